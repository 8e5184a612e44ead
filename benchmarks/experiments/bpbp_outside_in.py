"""Experiment (not part of the learner): split a B P B P target from the outside in.

With bit reversals for both permutations, ``B2 P B1 P = B2 B1_dec``: an increasing-stride
butterfly after a decreasing-stride one, i.e. ``S_out diag(M1, M2) S_in`` with the two stride-N/2
stages outside and two half-size problems of the same kind inside. ``S_in`` exists iff the target
maps a "pair-form" subspace ``{x : x[j + N/2] = a_j x[j]}`` onto another, ``{y : y[j + N/2] =
b_j y[j]}``. Those equations are linear in ``a`` for fixed ``b`` and, per row, in ``b`` for fixed
``a``, so an alternating fit from a random ``b`` finds a solution; a second start from ``-b`` of
the first (plus noise) finds the other, and ``M1 = A + B diag(a1)``, ``M2 = A + B diag(a2)``
(``A``, ``B``: top-left and top-right blocks) recurse down to size 1. Every split exact means an
exact factorization. Prints the number of splits and the worst relative residual:

    python benchmarks/experiments/bpbp_outside_in.py --n 256 --seed 0

Measured 2026-11-28 (docs/gradient.md): convolution N = 32, 31 splits, worst 1e-13, 0.6 s;
N = 256, 255 splits, worst 1e-13, 1.9 s. Turning the splits into butterfly twiddles is not written.
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


def split(m: np.ndarray, rng: np.random.Generator, stats: dict, iters: int, tol: float) -> None:
    """Split ``m`` into two half-size problems and recurse; record the residuals in ``stats``."""
    n = m.shape[0]
    if n == 1:
        return
    h = n // 2
    a1, b1, r1 = pair_form_fit(m, rng.standard_normal(h) + 1j * rng.standard_normal(h), iters, tol)
    a2, b2, r2 = pair_form_fit(m, -b1 + 0.3 * rng.standard_normal(h), iters, tol)
    stats["splits"] += 1
    stats["worst"] = max(stats["worst"], r1, r2)
    if np.abs(a2 - a1).min() < 1e-8:
        stats["degenerate"] += 1
        return
    split(m[:h, :h] + m[:h, h:] * a1[None, :], rng, stats, iters, tol)
    split(m[:h, :h] + m[:h, h:] * a2[None, :], rng, stats, iters, tol)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transform", default="convolution")
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--iters", type=int, default=20000, help="alternations per split at most")
    args = parser.parse_args()
    target = transforms.build(args.transform, args.n).astype(complex)
    stats = {"splits": 0, "worst": 0.0, "degenerate": 0}
    start = time.perf_counter()
    split(target, np.random.default_rng(args.seed), stats, args.iters, 1e-13)
    print(f"{args.transform} N={args.n}: {stats['splits']} splits, {stats['degenerate']} degenerate, "
          f"worst relative residual {stats['worst']:.1e}, {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
