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

The DCT's real-valued channels (positions whose state is one number, its other slot identically
zero) make ``P`` or ``R`` singular in some pairs. The walk tracks which computed slots the kernel
holds as an exact 0 (slot 1 of the input; an output whose every term is a zero coefficient or a
zero input). A column of ``P`` or ``R`` that reads such a slot multiplies 0, so it may hold
anything: the walk fills it with the live column turned by 90 degrees, and ``P`` becomes
invertible. What stays singular (a pair whose output has a zero slot while its inputs have none,
near the input) keeps its full block with the incoming carry folded in, and its outputs start
afresh with the identity.

A pair is taken only when ``P`` and ``R`` are well conditioned: a carried gauge multiplies the
rounding of the values it carries by up to its condition number, so that is kept below ``COND``
= 4. (The DCT's, DST's and Hartley's ``P`` and ``R`` are below 3.5 or singular; random orthogonal
4x4 blocks, whose quarters are anything, mostly stay general.) The kernel decides per block of 8
pairs (its SIMD lanes), so a block is in the unit form only when all 8 of its pairs are; the walk
decides by those blocks. The first stage (reading slot 0 only) and the last (writing slot 0 only)
already stream 8 coefficients; they take the carry as it is.

On a learned DCT-1024 this puts 88 % of the middle stages' pairs in the unit form (50-75 % of the
blocks in the two stages after the first, 84-100 % in the others; DCT-4096: 92 %). Numbers are
computed in float64 from the factors already cast to the working precision, and the result is
checked against the original step on random vectors: a walk that changed the product by more
than rounding is not used. (NaN and Inf: a column filled in here multiplies what the reference
multiplies by 0, and 0 * Inf is NaN in both, so a non-finite input still floods its vector.)
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
    zero = np.zeros((n, 2), dtype=bool)  # computed slots that hold an exact 0 (slot 1 of the input)
    zero[:, 1] = True
    out = np.empty_like(data)
    unit = [np.zeros(half, dtype=bool) for _ in range(levels)]
    for lev in range(levels):
        pos0 = pair_positions(n, lev)
        pos1 = pos0 + (1 << lev)
        z0, z1 = zero[pos0], zero[pos1]
        block = _fold(data[lev], carry[pos0], carry[pos1], z0, z1)
        carry[pos0] = carry[pos1] = np.eye(2)
        out[lev] = block
        if 0 < lev < levels - 1:
            p, r = _complete(block[:, 0, :, 0, :], z0), _complete(block[:, 1, :, 0, :], z0)
            ok = _by_blocks(_invertible(p) & _invertible(r), orders[lev])
            normal = np.zeros((int(ok.sum()), 2, 2, 2, 2))
            normal[:, 0, :, 0, :] = normal[:, 1, :, 0, :] = np.eye(2)
            normal[:, 0, :, 1, :] = np.linalg.solve(p[ok], block[ok, 0, :, 1, :])
            normal[:, 1, :, 1, :] = np.linalg.solve(r[ok], block[ok, 1, :, 1, :])
            out[lev][ok] = normal
            carry[pos0[ok]], carry[pos1[ok]] = p[ok], r[ok]
            unit[lev] = ok
        zero[pos0], zero[pos1] = _zero_outputs(out[lev], z0, z1)
    if not any(u.any() for u in unit) or not _same_product(data, out):
        return None
    return Rank2Plan(out, unit)


def _fold(block: np.ndarray, k0: np.ndarray, k1: np.ndarray, z0: np.ndarray, z1: np.ndarray) -> np.ndarray:
    """The stage's blocks reading the carried gauges: column group (member c) times ``k_c``; the
    columns that read an exact zero (``z_c``) set to zero, which changes nothing they compute."""
    folded = np.array(block)
    folded[:, :, :, 0, :] = block[:, :, :, 0, :] @ k0[:, None] * ~z0[:, None, None, :]
    folded[:, :, :, 1, :] = block[:, :, :, 1, :] @ k1[:, None] * ~z1[:, None, None, :]
    return folded


def _complete(m: np.ndarray, zero: np.ndarray) -> np.ndarray:
    """``m`` (pairs, 2, 2) with its columns that read an exact zero filled in freely: a column
    multiplying 0 may hold anything, so the one opposite a live column gets that column turned by
    90 degrees (the DCT's real-valued channels: ``P`` singular only through that column), and
    both become the identity's when both read zeros."""
    m = np.array(m)
    for j in (0, 1):
        only = zero[:, j] & ~zero[:, 1 - j]
        live = m[only, :, 1 - j]
        m[only, :, j] = np.stack([-live[:, 1], live[:, 0]], axis=-1) * (1 if j == 1 else -1)
    both = zero.all(axis=1)
    m[both] = np.eye(2)
    return m


def _zero_outputs(block: np.ndarray, z0: np.ndarray, z1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which output slots of each pair the kernel computes as an exact 0: every term is a zero
    coefficient or a zero input (0 * x + 0 = 0 for finite x)."""
    reads = np.stack([~z0, ~z1], axis=1)  # (pair, member c, slot r): the input is not known zero
    terms = (block != 0) & reads[:, None, None, :, :]
    zero = ~terms.any(axis=(3, 4))  # (pair, o, s)
    return zero[:, 0], zero[:, 1]


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
