"""Experiment (not part of the learner): split a B P B P target from the outside in.

With bit reversals for both permutations, ``B2 P B1 P = B2 B1_dec``: an increasing-stride
butterfly after a decreasing-stride one, i.e. ``S_out diag(M1, M2) S_in`` with the two stride-N/2
stages outside and two half-size problems of the same kind inside. ``S_in`` exists iff the target
maps a "pair-form" subspace ``{x : x[j + N/2] = a_j x[j]}`` onto another, ``{y : y[j + N/2] =
b_j y[j]}``. Those equations are linear in ``a`` for fixed ``b`` and, per row, in ``b`` for fixed
``a``, so an alternating fit from a random ``b`` finds a solution; a second start from ``-b`` of
the first (plus noise) finds the other, and ``M1 = A + B diag(a1)``, ``M2 = A + B diag(a2)``
(``A``, ``B``: top-left and top-right blocks) recurse down to size 1. Each split is
``M = V diag(M1, M2) U^-1`` with pair matrices ``U_j = [[1, 1], [a1_j, a2_j]]`` and ``V_j = [[1, 1],
[b1_j, b2_j]]``, so the ``U^-1`` of all splits form a decreasing-stride butterfly, the ``V`` an
increasing-stride one, and the size-1 blocks a diagonal: the script assembles those into
``[R, B1, R, D, B2]`` (R the bit reversal, ``B_dec = R B_inc R``) and measures that product's
relative error against the target with the reference multiply. Prints the splits, the worst
split residual and the assembled factorization's error:

    python benchmarks/experiments/bpbp_outside_in.py --n 256 --seed 0

Measured 2026-11-28 (docs/gradient.md): convolution N = 32, 31 splits, worst 1e-13, 0.6 s;
N = 256, 255 splits, worst 1e-13, 1.9 s.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import transforms


def pair_form_fit(m: np.ndarray, b: np.ndarray, iters: int, tol: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Alternate the two linear least squares for ``(a, b)``; returns ``a, b`` and the relative residual."""
    h = m.shape[0] // 2
    top_l, top_r, bot_l, bot_r = m[:h, :h], m[:h, h:], m[h:, :h], m[h:, h:]
    resid = np.inf
    for _ in range(iters):
        u, v = bot_r - b[:, None] * top_r, b[:, None] * top_l - bot_l
        a = (np.conj(u) * v).sum(0) / (np.abs(u) ** 2).sum(0)
        p, q = top_l + top_r * a[None, :], bot_l + bot_r * a[None, :]
        b = (np.conj(p) * q).sum(1) / (np.abs(p) ** 2).sum(1)
        resid = float(np.linalg.norm(q - b[:, None] * p) / np.linalg.norm(m))
        if resid < tol:
            break
    return a, b, resid


def split(m: np.ndarray, rng: np.random.Generator, stats: dict, iters: int, tol: float, offset: int = 0) -> None:
    """Split ``m`` (the block at ``offset``) into two half-size problems and recurse; record the
    residuals in ``stats`` and the pair matrices in ``stats["dec"]``, ``stats["inc"]``, ``stats["diag"]``."""
    n = m.shape[0]
    if n == 1:
        stats["diag"][offset] = m[0, 0]
        return
    h = n // 2
    a1, b1, r1 = pair_form_fit(m, rng.standard_normal(h) + 1j * rng.standard_normal(h), iters, tol)
    a2, b2, r2 = pair_form_fit(m, -b1 + 0.3 * rng.standard_normal(h), iters, tol)
    stats["splits"] += 1
    stats["worst"] = max(stats["worst"], r1, r2)
    if np.abs(a2 - a1).min() < 1e-8:
        stats["degenerate"] += 1
        return
    level, pairs = int(np.log2(h)), (offset // (2 * h)) * h + np.arange(h)
    u = np.stack([np.stack([np.ones(h), np.ones(h)], -1), np.stack([a1, a2], -1)], -2)  # (h, o, r)
    stats["dec"][level, pairs] = np.linalg.inv(u)
    stats["inc"][level, pairs] = np.stack([np.stack([np.ones(h), np.ones(h)], -1), np.stack([b1, b2], -1)], -2)
    split(m[:h, :h] + m[:h, h:] * a1[None, :], rng, stats, iters, tol, offset)
    split(m[:h, :h] + m[:h, h:] * a2[None, :], rng, stats, iters, tol, offset + h)


def assembled_error(target: np.ndarray, stats: dict) -> float:
    """Relative error of ``[R, B1, R, D, B2]`` (reference multiply) against ``target``."""
    from bfly_cli.factors import Factors, Step, bit_reversal
    from bfly_cli.torch_butterfly import decreasing_to_increasing

    n = target.shape[0]
    rev = bit_reversal(n)
    steps = [Step("permutation", rev), Step("butterfly", decreasing_to_increasing(stats["dec"])),
             Step("permutation", rev), Step("diagonal", stats["diag"]), Step("butterfly", stats["inc"])]
    dense = Factors(n, steps).to_dense()
    return float(np.linalg.norm(dense - target) / np.linalg.norm(target))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transform", default="convolution")
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--iters", type=int, default=20000, help="alternations per split at most")
    args = parser.parse_args()
    target = transforms.build(args.transform, args.n).astype(complex)
    levels = int(np.log2(args.n))
    stats = {"splits": 0, "worst": 0.0, "degenerate": 0, "diag": np.zeros(args.n, complex),
             "dec": np.zeros((levels, args.n // 2, 2, 2), complex), "inc": np.zeros((levels, args.n // 2, 2, 2), complex)}
    start = time.perf_counter()
    split(target, np.random.default_rng(args.seed), stats, args.iters, 1e-13)
    seconds = time.perf_counter() - start
    error = assembled_error(target, stats) if not stats["degenerate"] else float("nan")
    print(f"{args.transform} N={args.n}: {stats['splits']} splits, {stats['degenerate']} degenerate, "
          f"worst split residual {stats['worst']:.1e}, {seconds:.2f} s; "
          f"assembled [R, B, R, D, B] relative error {error:.1e}")


if __name__ == "__main__":
    main()
