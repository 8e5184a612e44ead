"""Plan-time specialization of ``rank2`` stages: the unit form, by moving 2x2 gauges between stages.

A rank2 stage mixes the 2-slot states of each pair's members through a real 4x4 block
``[[P, Q], [R, S]]`` (``P``: member 0 into output 0, ``Q``: member 1 into output 0, ...): 16
multiply-adds per pair and 16 coefficients to stream. A position's state is only defined up to an
invertible change of basis of its two slots (a gauge): computing ``P^-1 y0`` and ``R^-1 y1`` instead
of ``y0`` and ``y1``, and folding ``P`` and ``R`` into the columns of the next stage that read those
positions, leaves the product unchanged. The stage then reads::

    [[I, P^-1 Q], [I, R^-1 S]]          y0 = x0 + W0 x1,  y1 = x0 + W1 x1

8 multiply-adds per pair and 8 coefficients, the rank-2 analogue of the FFT form of
:mod:`bfly_cli.kernel_stages`. The walk goes stride 1 first and carries each position's 2x2 gauge
(``carry``: the true state is ``carry @`` the computed one) into the next stage's columns.

Not every pair has it: the DCT's real-valued channels (the positions whose state is one number,
its other slot identically zero) give singular ``P`` or ``R``. Such a pair keeps its full block
with the incoming carry folded in, and its outputs start afresh with the identity. A pair is taken
only when ``P`` and ``R`` are well conditioned: a carried gauge ``K`` multiplies the rounding of
the values it carries by up to its condition number, so that is kept below ``COND`` = 4. (The
DCT's, DST's and Hartley's ``P`` and ``R`` are below 3.5 or singular; random orthogonal 4x4
blocks, whose quarters are anything, mostly stay general.)
The kernel decides per block of 8 pairs (its SIMD lanes), so a block is in the unit form only when
all 8 of its pairs are; the walk decides by those blocks. The first stage (reading slot 0 only)
and the last (writing slot 0 only) already stream 8 coefficients; they take the carry as it is.

On a learned DCT-1024 this puts half of the middle stages' pairs in the unit form (0-50 % of the
blocks near the input, where a real-valued channel sits in almost every block, 75-98 % near the
output; DCT-4096: 0.6 of the pairs). Numbers are computed in float64 from
the factors already cast to the working precision, and the result is checked against the original
step on random vectors: a walk that changed the product by more than rounding is not used.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .layout import pair_positions
from .reference import rank2_multiply

COND = 4.0  # the largest 2-norm condition number of P or R a unit pair may have (see unit_form)
CHECK_TOL = 1e-12  # relative change of the product (float64) above which the walk is not used
_LANES = 8  # pairs per kernel block (the C side's SIMD block)


@dataclasses.dataclass(frozen=True)
class Rank2Plan:
    """A rank2 step as the kernel runs it: ``stages`` (float64, the layout of the step's data) and,
    per stage, which pairs are in the unit form (``unit[lev]``: bool per pair; all False for the
    first and last stage). A unit pair's block is ``[[I, W0], [I, W1]]`` in ``stages``."""

    stages: np.ndarray
    unit: list[np.ndarray]

    def unit_share(self, lev: int) -> float:
        """The fraction of stage ``lev``'s pairs in the unit form."""
        return float(np.mean(self.unit[lev])) if self.unit[lev].size else 0.0


def unit_form(stages: np.ndarray, orders: list[np.ndarray]) -> Rank2Plan | None:
    """The rank2 step ``stages`` (levels, N/2, 2, 2, 2, 2) with every kernel block that allows it in
    the unit form, or None when no block does (or the check fails). ``orders[lev]``: the pair
    index at each position of the kernel's coefficient stream of stage ``lev`` (its blocks are 8
    consecutive positions there)."""
    data = np.asarray(stages, dtype=np.float64)
    levels, half = data.shape[:2]
    n = 2 * half
    if levels < 3 or half % _LANES:
        return None
    carry = np.broadcast_to(np.eye(2), (n, 2, 2)).copy()
    out = np.empty_like(data)
    unit = [np.zeros(half, dtype=bool) for _ in range(levels)]
    for lev in range(levels):
        pos0 = pair_positions(n, lev)
        pos1 = pos0 + (1 << lev)
        block = _fold(data[lev], carry[pos0], carry[pos1])
        carry[pos0] = carry[pos1] = np.eye(2)
        out[lev] = block
        if lev == 0 or lev == levels - 1:
            continue
        ok = _by_blocks(_invertible(block[:, 0, :, 0, :]) & _invertible(block[:, 1, :, 0, :]), orders[lev])
        if not ok.any():
            continue
        p, r = block[ok, 0, :, 0, :], block[ok, 1, :, 0, :]
        normal = np.zeros((int(ok.sum()), 2, 2, 2, 2))
        normal[:, 0, :, 0, :] = normal[:, 1, :, 0, :] = np.eye(2)
        normal[:, 0, :, 1, :] = np.linalg.solve(p, block[ok, 0, :, 1, :])
        normal[:, 1, :, 1, :] = np.linalg.solve(r, block[ok, 1, :, 1, :])
        out[lev][ok] = normal
        carry[pos0[ok]], carry[pos1[ok]] = p, r
        unit[lev] = ok
    if not any(u.any() for u in unit) or not _same_product(data, out):
        return None
    return Rank2Plan(out, unit)


def _fold(block: np.ndarray, k0: np.ndarray, k1: np.ndarray) -> np.ndarray:
    """The stage's blocks reading the carried gauges: column group (member c) times ``k_c``."""
    folded = np.array(block)
    folded[:, :, :, 0, :] = block[:, :, :, 0, :] @ k0[:, None]
    folded[:, :, :, 1, :] = block[:, :, :, 1, :] @ k1[:, None]
    return folded


def _invertible(m: np.ndarray) -> np.ndarray:
    """Per 2x2 matrix: finite and condition number below :data:`COND`."""
    with np.errstate(all="ignore"):
        cond = np.linalg.cond(m) if m.size else np.zeros(0)
    return np.isfinite(cond) & (cond < COND)


def _by_blocks(ok: np.ndarray, order: np.ndarray) -> np.ndarray:
    """``ok`` per pair, kept only where every pair of the kernel block holding it is ok."""
    block_ok = ok[order].reshape(-1, _LANES).all(axis=1)
    result = np.empty_like(ok)
    result[order] = np.repeat(block_ok, _LANES)
    return result


def _same_product(before: np.ndarray, after: np.ndarray) -> bool:
    """True when both steps give the same product on random vectors, to float64 rounding."""
    x = np.random.default_rng(0).standard_normal((2, 2 * before.shape[1]))
    want = rank2_multiply(before, x)
    scale = np.linalg.norm(want)
    return bool(np.all(np.isfinite(after)) and np.linalg.norm(rank2_multiply(after, x) - want) <= CHECK_TOL * scale)
