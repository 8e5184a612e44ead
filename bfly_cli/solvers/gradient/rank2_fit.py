"""Fit the real rank-2 butterfly model (a ``[permutation, rank2]`` pair of steps) from random stages.

Every block rank-2 order is exactly such a product (the hierarchical factorization with rank-2
blocks), and its least squares from random stages showed no local minima: L-BFGS reaches ~1e-7
in 200 iterations, then alternating least squares (each level solved exactly with the others
fixed, :mod:`.rank2_als`) reaches 1e-22 in a few sweeps, where L-BFGS crawls along the GL(2)
gauge and Levenberg-Marquardt on all 8 N log2 N unknowns at once is too slow beyond N = 64.
LM remains the fallback while its system is small enough to solve directly.
"""

from __future__ import annotations

import numpy as np

from ...factors import Step
from ...layout import log2_exact
from . import rank2_als
from .refine import GN_STRUCTURED, refine_steps
from .restart import Fit, Restart, best_of_starts

_LBFGS = 200  # L-BFGS iterations from a random start (balances the stages for the ALS)
_ALS_BELOW = 1e-2  # alternating least squares from this loss on (L-BFGS has balanced the stages)
_LM = 60  # Levenberg-Marquardt steps of the fallback
_SEED_SALT = 7919  # the random stages come from (restart seed, this): apart from the twiddle draws


def fit_rank2(run: Restart, perm: np.ndarray) -> Fit:
    """Fit the rank-2 model to ``target[:, perm]`` from ``opts.rank2_tries`` random starts at most."""
    n = run.target.shape[0]
    rng = np.random.default_rng([run.seed, _SEED_SALT])

    def fit(attempt: int) -> tuple[list[Step], float]:
        stages = rng.standard_normal((log2_exact(n), n // 2, 2, 2, 2, 2)) * 0.5
        return _fit_from(run, perm, stages, attempt)

    return best_of_starts(run.opts.rank2_tries, fit, run.goal)


def _fit_from(run: Restart, perm: np.ndarray, stages: np.ndarray, attempt: int) -> tuple[list[Step], float]:
    """L-BFGS, then ALS once near, then LM while that is cheap; the best (steps, loss)."""
    import torch

    n, goal = run.target.shape[0], run.goal
    steps = [Step("permutation", np.asarray(perm)), Step("rank2", stages)]
    steps, loss = refine_steps(run.target, steps, _LBFGS, goal / 100)
    run.report("rank2", attempt, loss)
    if loss <= _ALS_BELOW:
        start = torch.as_tensor(steps[1].data, device=run.target.device)
        solved, loss = rank2_als.alternate(perm, start, run.target, goal / 100)
        steps = [steps[0], Step("rank2", solved.cpu().numpy())]
        run.report("rank2", attempt, loss)
    if loss > goal and 8 * n * log2_exact(n) <= GN_STRUCTURED:  # the rank2 step's real entries
        # Levenberg-Marquardt from where that ended, while its system is solved directly
        # (N <= 64); beyond, its CG steps cost minutes and a fresh start is the better bet.
        steps, loss = refine_steps(run.target, steps, 0, goal / 100, newton=True, gn_iters=_LM)
        run.report("rank2", attempt, loss)
    return steps, loss
