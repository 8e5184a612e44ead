"""Experiment (not part of the learner): fit ``Re(B P)`` with a known order, complex twiddles
from random, by alternating least squares (each level's complex twiddles an exact real least
squares: a twiddle ``a + ib`` acts on (Re, Im) as the real block ``[[a, -b], [b, a]]``).

Orders from the notes (section 5): bit reversal for Hartley; "evens, then odds reversed"
composed with bit reversal for DCT-II and DST-II. Prints, per seed, the relative squared error
reached and whether it is exact (<= 1e-20):

    python benchmarks/experiments/re_fit_known_order.py --transform hartley --n 32 --seeds 6
    python benchmarks/experiments/re_fit_known_order.py --transform dct --n 32 --seeds 6 --lbfgs 200

Measured 2026-11-28 (docs/gradient.md, *Follow-up*): Hartley is exact in most starts, DCT-II
stalls at 1e-2 to 6e-2 in most, even in this order.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

from bfly_cli import transforms
from bfly_cli.factors import Step
from bfly_cli.solvers.gradient import rank2_als
from bfly_cli.solvers.gradient.refine import refine_steps
from bfly_cli.torch_butterfly import permutation_from_choices
from bfly_cli.torch_ops import rank2_stage_torch

BASIS = torch.zeros(2, 2, 2, dtype=torch.float64)  # (out slot, in slot, a|b)
BASIS[0, 0, 0] = BASIS[1, 1, 0] = BASIS[1, 0, 1] = 1.0
BASIS[0, 1, 1] = -1.0


def known_order(name: str, n: int) -> np.ndarray:
    choices = np.zeros((int(math.log2(n)) - 1, 3), dtype=bool)
    choices[:, 0] = True  # every "evens, then odds" choice: the bit reversal
    perm = permutation_from_choices(n, choices)
    if name in ("dct", "dst"):
        perm = np.concatenate([np.arange(0, n, 2), np.arange(n - 1, 0, -2)])[perm]
    return perm


def expand(params: torch.Tensor) -> torch.Tensor:
    """(…, N/2, o, r, 2) real pairs -> rank-2 stage entries (…, N/2, o, p, r, q)."""
    return torch.einsum("pqk,...ork->...oprq", BASIS, params)


def sweep(perm, params, target) -> None:
    levels, half = params.shape[:2]
    n = 2 * half
    readouts = [rank2_als.readout(expand(params), lev) for lev in range(levels)]
    x = torch.eye(n, dtype=torch.float64)[:, perm]
    state = torch.stack([x, torch.zeros_like(x)], -1)
    for lev in range(levels):
        before, after = state.reshape(n, 2 * n), readouts[lev]
        out_i, in_i = (torch.as_tensor(i) for i in rank2_als.param_index(n, lev))
        gram = (after @ after.T)[out_i][:, out_i] * (before.T @ before)[in_i][:, in_i]
        rhs = (before.T @ target @ after.T)[in_i, out_i]
        g = torch.einsum("aoprqbOPRQ,pqk,PQK->aorkbORK", gram.reshape(half, 2, 2, 2, 2, half, 2, 2, 2, 2),
                         BASIS, BASIS).reshape(half * 8, half * 8)
        r = torch.einsum("aoprq,pqk->aork", rhs.reshape(half, 2, 2, 2, 2), BASIS).reshape(-1)
        solve = rank2_als.scaled_solver(g)
        if solve is not None:
            t = params[lev].reshape(-1).clone()
            for _ in range(2):
                t = t + solve(r - g @ t)
            params[lev] = t.reshape(params[lev].shape)
        state = rank2_stage_torch(expand(params[lev]), state, lev)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transform", default="hartley")
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--sweeps", type=int, default=200)
    parser.add_argument("--lbfgs", type=int, default=0, help="float64 L-BFGS iterations before ALS")
    args = parser.parse_args()
    torch.set_num_threads(1)
    n = args.n
    target = torch.as_tensor(np.ascontiguousarray(transforms.build(args.transform, n).T), dtype=torch.float64)
    norm2 = float(target.square().sum())
    perm = known_order(args.transform, n)
    exact = 0
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        params = torch.as_tensor(rng.standard_normal((int(math.log2(n)), n // 2, 2, 2, 2)) * 0.5)
        start = time.perf_counter()
        if args.lbfgs:
            tw = (params[..., 0] + 1j * params[..., 1]).numpy()
            steps, _ = refine_steps(target, [Step("permutation", perm), Step("butterfly", tw), Step("real", None)],
                                    args.lbfgs, 1e-22)
            tw = torch.as_tensor(steps[1].data)
            params = torch.stack([tw.real, tw.imag], -1).contiguous()
        loss = rank2_als.relative_loss(perm, expand(params), target, norm2)
        for _ in range(args.sweeps):
            if loss <= 1e-22:
                break
            sweep(perm, params, target)
            loss = rank2_als.relative_loss(perm, expand(params), target, norm2)
        exact += loss <= 1e-20
        print(f"seed {seed}: relative squared error {loss:.1e} ({time.perf_counter() - start:.1f} s)")
    print(f"{args.transform} N={n}: exact in {exact} of {args.seeds}")


if __name__ == "__main__":
    main()
