"""Least squares for the real rank-2 butterfly model (a ``[permutation, rank2]`` pair of steps).

The model is multilinear in its stages: with every stage but one fixed, the output is *linear*
in that stage's entries. A stage entry maps one (position, slot) of the state before its stage to
one after it, so its Jacobian column is ``vec(a (x) b)``, ``a`` how the output reads the state
after the stage (:func:`readout`) and ``b`` that state for every input (:func:`states_before`).
Two solvers use this:

* :func:`normal_equations` / :func:`level_blocks`: ``J^T J`` (or its per-level diagonal blocks)
  from Gram matrices, for the Levenberg-Marquardt step of ``gradient.py``;
* :func:`alternate`: alternating least squares, each level in turn solved exactly with the
  others fixed (block coordinate descent). Near a zero-residual fit that converges in a few
  sweeps where L-BFGS crawls (the GL(2) gauge at every intermediate coordinate leaves it flat
  directions) and where LM's full system (8 N log2 N unknowns) is too large to solve directly.

Targets are handled transposed, as in ``gradient.py``: ``target[j]`` is the output for input
``e_j``, so the model is ``Y = X_l W_l A_l`` at every level ``l``.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from ...torch_ops import rank2_multiply_torch, rank2_stage_torch

_SWEEPS = 30  # alternating sweeps at most (measured: 1-5 reach 1e-22 after 200 L-BFGS iterations)
_STALL = 6  # stop once this many sweeps have not halved the best loss
_RIDGES = (1e-12, 1e-10, 1e-8, 1e-6)  # damping of the Jacobi-scaled per-level system (unit diagonal), tried in turn
_DEAD = 1e-30  # entries whose diagonal is below this fraction of the largest reach no output


def normal_equations(perm, stages, scale2: float, grad) -> tuple:
    """``(J^T J, J^T r)`` of a [permutation, rank2] model from Gram matrices, without forming J.

    A stage entry maps one (position, slot) of the state before its stage to one after it, so
    its Jacobian column is ``vec(a (x) b)``: ``a`` how the output reads the state after the stage,
    ``b`` the state before it over all inputs. Hence ``J^T J = (A_l^T A_m) o (B_l^T B_m)``
    entrywise, gathered per pair of levels: O(P^2) memory and no forward-mode pass over P
    tangents (which costs ~10 s a step at N = 64).
    """
    levels, half = stages.shape[:2]
    n = 2 * half
    before = states_before(perm, stages)  # l -> (N inputs, 2N)
    after = [readout(stages, lev) for lev in range(levels)]  # l -> (2N, N outputs)
    index = [param_index(n, lev) for lev in range(levels)]
    rows = []
    for l in range(levels):
        out_l, in_l = index[l]
        row = []
        for m in range(levels):
            out_m, in_m = index[m]
            ga = (after[l] @ after[m].T)[out_l][:, out_m]
            gb = (before[l].T @ before[m])[in_l][:, in_m]
            row.append(ga * gb)
        rows.append(torch.cat(row, dim=1))
    return torch.cat(rows, dim=0) * scale2, grad.reshape(-1)


def level_blocks(perm, stages, scale2: float) -> list:
    """The per-level diagonal blocks of ``J^T J`` (see :func:`normal_equations`)."""
    levels, half = stages.shape[:2]
    before = states_before(perm, stages)
    out = []
    for lev in range(levels):
        out_i, in_i = param_index(2 * half, lev)
        after = readout(stages, lev)
        out.append((after @ after.T)[out_i][:, out_i] * (before[lev].T @ before[lev])[in_i][:, in_i] * scale2)
    return out


def states_before(perm, stages) -> list:
    """The 2-slot state before every stage, for each input basis vector: ``(N, 2N)`` per level."""
    levels, half = stages.shape[:2]
    n = 2 * half
    x = torch.eye(n, dtype=stages.dtype, device=stages.device)[:, perm]
    state = torch.stack([x, torch.zeros_like(x)], dim=-1)
    out = []
    for lev in range(levels):
        out.append(state.reshape(n, 2 * n))
        state = rank2_stage_torch(stages[lev], state, lev)
    return out


def readout(stages, level: int):
    """How the output (slot 0 after the last stage) reads the state after stage ``level``: ``(2N, N)``."""
    levels, half = stages.shape[:2]
    n = 2 * half
    state = torch.eye(2 * n, dtype=stages.dtype, device=stages.device).reshape(2 * n, n, 2)
    for lev in range(level + 1, levels):
        state = rank2_stage_torch(stages[lev], state, lev)
    return state[..., 0]


@functools.lru_cache(maxsize=64)
def param_index(n: int, lev: int) -> tuple[np.ndarray, np.ndarray]:
    """For each entry of stage ``lev`` (flat, layout (N/2, 2, 2, 2, 2)): its (output, input) state index."""
    s = 1 << lev
    i, o, p, r, q = np.meshgrid(np.arange(n // 2), *(np.arange(2),) * 4, indexing="ij")
    b, low = i // s, i % s
    out = (b * 2 * s + o * s + low) * 2 + p
    inp = (b * 2 * s + r * s + low) * 2 + q
    return out.reshape(-1), inp.reshape(-1)




def model_output(perm, stages) -> torch.Tensor:
    """``Y`` (row ``j``: the model applied to ``e_j``), the transposed product of the two steps."""
    n = 2 * stages.shape[1]
    return rank2_multiply_torch(stages, torch.eye(n, dtype=stages.dtype, device=stages.device)[:, perm])


def relative_loss(perm, stages, target, norm2: float) -> float:
    """``||Y - target||_F^2 / ||target||_F^2``."""
    return float((model_output(perm, stages) - target).square().sum()) / norm2


def alternate(perm, stages, target, goal: float, sweeps: int = _SWEEPS, stall: int = _STALL) -> tuple:
    """Alternating least squares from ``stages``; returns the best ``(stages, loss)`` seen.

    One sweep solves level 0, 1, ..., L-1 in turn, each exactly given the others (the state
    before it is updated as the sweep goes up; the readouts above it are not yet touched). Stops
    at ``loss <= goal``, after ``sweeps``, or once ``stall`` sweeps have not halved the best
    loss. Each level's system has 8N unknowns (N = 256: 2048), far smaller than LM's 8 N log2 N.
    The loss need not fall monotonically in floating point (the systems are singular along the
    gauge and nearly so elsewhere), so the best iterate is kept.
    """
    perm = np.asarray(perm)
    stages = torch.as_tensor(stages).clone()
    norm2 = float(target.square().sum())
    best = (stages.clone(), relative_loss(perm, stages, target, norm2))
    since = 0
    for _ in range(sweeps):
        if best[1] <= goal:
            break
        stages = _sweep(perm, stages, target)
        loss = relative_loss(perm, stages, target, norm2)
        if not math.isfinite(loss):
            break
        since = 0 if loss < 0.5 * best[1] else since + 1
        if loss < best[1]:
            best = (stages.clone(), loss)
        if since >= stall:
            break
    return best


def _sweep(perm, stages, target) -> torch.Tensor:
    """One upward sweep of exact per-level least-squares solves (in place on a copy)."""
    stages = stages.clone()
    levels, half = stages.shape[:2]
    n = 2 * half
    readouts = [readout(stages, lev) for lev in range(levels)]  # depend only on the levels above
    x = torch.eye(n, dtype=stages.dtype, device=stages.device)[:, perm]
    state = torch.stack([x, torch.zeros_like(x)], dim=-1)
    for lev in range(levels):
        before = state.reshape(n, 2 * n)
        stages[lev] = _solve_level(before, readouts[lev], target, stages[lev], param_index(n, lev))
        state = rank2_stage_torch(stages[lev], state, lev)
    return stages


def _solve_level(before, after, target, current, index) -> torch.Tensor:
    """The stage minimizing ``||before W after - target||`` (``W`` holding the stage's entries).

    Normal equations ``G t = b`` with ``G = (A A^T)[out, out] o (X^T X)[in, in]`` and
    ``b = (X^T T A^T)[in, out]``, solved for the *change* from the current stage (so entries that
    reach no output stay as they are, and one step of iterative refinement recovers the digits
    that the Jacobi-scaled, lightly damped Cholesky loses on this nearly singular system).
    """
    out_i, in_i = (torch.as_tensor(i, device=before.device) for i in index)
    gram = (after @ after.T)[out_i][:, out_i] * (before.T @ before)[in_i][:, in_i]
    rhs = (before.T @ target @ after.T)[in_i, out_i]
    solve = scaled_solver(gram)
    if solve is None:  # not positive definite even with the largest damping: keep the stage
        return current
    t = current.reshape(-1).clone()
    for _ in range(2):  # the solve, then one refinement
        t = t + solve(rhs - gram @ t)
    return t.reshape(current.shape)


def scaled_solver(gram: torch.Tensor):
    """``r -> (G + damping)^-1 r`` by a Jacobi-scaled Cholesky, or None if none of the dampings works.

    The system is singular along the gauge and, in floating point, can come out slightly
    indefinite; the ridge on the unit diagonal grows from ``_RIDGE`` until the factorization
    succeeds (rarely needed; seen in experiments on the complex form). Entries whose diagonal is
    negligible reach no output and get a zero update.
    """
    diag = gram.diagonal()
    live = diag > _DEAD * diag.max()
    scale = torch.where(live, diag.clamp_min(1e-300).rsqrt(), torch.zeros_like(diag))
    scaled = scale[:, None] * gram * scale[None, :]
    for ridge in _RIDGES:
        damped = scaled.clone()
        damped.diagonal().add_(torch.where(live, ridge, 1.0))
        chol, info = torch.linalg.cholesky_ex(damped)
        if int(info) == 0:
            return lambda r: torch.cholesky_solve((r * scale)[:, None], chol)[:, 0] * scale
    return None
