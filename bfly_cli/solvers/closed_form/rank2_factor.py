"""Real hierarchical factorization with rank-2 blocks (the real-part route's first half).

A real matrix ``T = Re(B P)`` (B a complex butterfly) is a sum of two butterflies with the same
column order, ``(B + conj B) / 2``, so under that order every block of every split of the
hierarchical algorithm (see :mod:`.hierarchical`) has real rank <= 2 instead of 1. The same
balanced recursion then works with one change: every internal node of the butterfly graph carries
a 2-dimensional real state ("slots") instead of one scalar. A subproblem of size m = 2^k is the
tensor ``(K, m, 2, m, 2)`` = ``[batch, out position, out slot, in position, in slot]``; the
original matrix uses slot 0 only. Each split is one batched rank-2 fit; its two factors become
the left and right subproblems, whose slots are the rank index. The result is a chain of L real
stages whose 2x2 "twiddles" are 2x2 blocks of 2x2 matrices: ``(L, N/2, 2, 2, 2, 2)`` =
``[level, pair, out member, out slot, in member, in slot]``.

Why this is exact without fixing any gauge: the rank index of a block only ever meets the
neighbouring factor inside one dense block of the next split, so an arbitrary invertible 2x2
change of basis per block never raises a later block's rank (the "chainable support" argument of
Le, Zheng, Riccietti and Gribonval). Blocks of rank < 2 get a near-zero second slot in a balanced
gauge (both factors scaled by sqrt of the singular values), which cannot steal rank later.

The fit is a randomized range finder with one power iteration (two batched products with the
block and one 2-column QR), so a split costs O(size of the matrix) rather than a batched SVD's
O(N^2.5).

**Noise.** A matrix that is only near the structure (rounded by another library, stored in
float32, measured) has rank-1 blocks whose second singular value is its noise, not zero. Kept,
that direction is carried by the balanced gauge at sqrt(noise) into the next split, where it
takes the slot of a genuine direction smaller than that: measured on a DCT-II at N = 1024 with
noise 1e-9, 650x the noise. So the rank decision is made against the matrix's own noise floor:
the top split's blocks of size p x q keep, beyond their best rank-2 part, a fraction
``1 - 2 (p + q - 2) / (p q)`` of white noise, which gives ``eps`` (:func:`noise_floor`), and a
block's second direction is dropped when ``s2 <= _MARGIN eps s1`` (white noise gives about
``0.35 eps s1`` at N = 1024) or below float64 rounding. A matrix whose "noise" exceeds 1e-2 is
not near the structure at all (a best-effort fit of a random matrix): its ranks are not cut.
Everything else is the least squares projection onto the structure, split by split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_RANK = 2
_SEED = 20240601  # fixed sketch: the same input always gives the same bytes
_ROUND = 1e-13  # singular values below this fraction of a block's largest are float64 rounding
_MARGIN = 3.0  # a second singular value within this factor of the noise floor is noise
_NEAR = 1e-2  # a noise floor above this is no longer noise around a structure (best-effort fits)


@dataclass(frozen=True)
class Rank2Stages:
    """Stages ``(L, N/2, 2, 2, 2, 2)`` and the noise floor ``eps`` (relative, Frobenius) that the
    rank decisions used: 0.0 when the top split's blocks have no room beyond rank 2 (N = 8)."""

    stages: np.ndarray
    noise: float


def factor_rank2(matrix: np.ndarray) -> np.ndarray:
    """Real stages ``(L, N/2, 2, 2, 2, 2)`` whose slot-0-in / slot-0-out chain best fits ``matrix``."""
    return factor_with_noise_floor(matrix).stages


def factor_with_noise_floor(matrix: np.ndarray) -> Rank2Stages:
    """:func:`factor_rank2` with the noise floor it estimated from the matrix and decided by.

    The matrix enters as a slot problem with *one* output and one input slot: the unused second
    slots are never materialized, so the top splits (the most expensive) touch N^2 numbers
    instead of 4 N^2. Subproblems keep one slot on the side that touches the matrix's rows or
    columns and get two on the side created by a split.
    """
    n = matrix.shape[0]
    mats = np.asarray(matrix, dtype=np.result_type(matrix.dtype, np.float64)).reshape(1, n, 1, n, 1)
    box: dict[str, float] = {}
    stages = _factor_batch(mats, box)[:, 0]
    return Rank2Stages(stages, box.get("noise", 0.0))


def _factor_batch(mats: np.ndarray, box: dict[str, float]) -> np.ndarray:
    """Factor K slot problems ``(K, m, so, m, si)`` at once; stages ``(k, K, m/2, 2, 2, 2, 2)``.

    ``box["noise"]`` is the noise floor: estimated by the first (top) split, read by the others.
    """
    count, m, s_out, _, s_in = mats.shape
    k = m.bit_length() - 1
    if k == 1:
        stages = np.zeros((1, count, 1, 2, _RANK, 2, _RANK), dtype=mats.dtype)
        stages[0, :, 0, :, :s_out, :, :s_in] = mats
        return stages
    low = k // 2
    hi, lo = 1 << (k - low), 1 << low
    # [K, c_hi, c_lo, s, a_hi, a_lo, r] -> blocks (K, a_hi, c_lo) over rows (c_hi, s), cols (a_lo, r)
    view = mats.reshape(count, hi, lo, s_out, hi, lo, s_in)
    blocks = view.transpose(0, 4, 2, 1, 3, 5, 6).reshape(count, hi, lo, hi * s_out, lo * s_in)
    left, right = _fit_split(blocks, box)  # (K, a_hi, c_lo, hi*so, 2), (K, a_hi, c_lo, lo*si, 2)
    upper = left.reshape(count, hi, lo, hi, s_out, _RANK).transpose(0, 2, 3, 4, 1, 5)
    upper = upper.reshape(count * lo, hi, s_out, hi, _RANK)  # X_{c_lo}[(c_hi, s), (a_hi, rho)]
    lower = right.reshape(count, hi, lo, lo, s_in, _RANK).transpose(0, 1, 2, 5, 3, 4)
    lower = lower.reshape(count * hi, lo, _RANK, lo, s_in)  # Y_{a_hi}[(c_lo, rho), (a_lo, r)]
    tw_upper = _factor_batch(upper, box)
    tw_lower = _factor_batch(lower, box)
    block = (2, _RANK, 2, _RANK)
    tw_upper = tw_upper.reshape(k - low, count, lo, hi // 2, *block).transpose(0, 1, 3, 2, 4, 5, 6, 7)
    tw_upper = tw_upper.reshape(k - low, count, m // 2, *block)
    tw_lower = tw_lower.reshape(low, count, m // 2, *block)
    return np.concatenate([tw_lower, tw_upper], axis=0)


def _fit_split(blocks: np.ndarray, box: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """One split's rank-2 fit; the first call (the top split) also estimates the noise floor."""
    basis, core = _range(blocks.reshape(-1, *blocks.shape[-2:]))
    if "noise" not in box:
        box["noise"] = noise_floor(blocks.reshape(-1, *blocks.shape[-2:]), basis, core)
    noise = box["noise"] if box["noise"] <= _NEAR else 0.0  # far from the structure: no noise to drop
    return _balanced(basis, core, max(_ROUND, _MARGIN * noise), blocks.shape)


def noise_floor(mats: np.ndarray, basis: np.ndarray, core: np.ndarray) -> float:
    """Relative noise ``eps`` (``||E||_F / ||A||_F``) from the blocks' energy beyond rank 2.

    White noise leaves a fraction ``1 - 2 (p + q - 2) / (p q)`` of itself outside the best rank-2
    part of a p x q block (the rest is absorbed by the fit's 2 (p + q - 2) degrees of freedom).
    The residual is formed explicitly, not as ``||B||^2 - s1^2 - s2^2``, whose cancellation
    would put the floor of a clean matrix at 1e-8 instead of 1e-16. Every block takes part:
    rounding and storage noise are not white (a float32 Hartley matrix has whole blocks that
    are exact), so a subset can miss them.
    """
    p, q = mats.shape[-2:]
    room = 1.0 - _RANK * (p + q - _RANK) / (p * q)
    total = float(np.vdot(mats, mats).real)
    if room <= 0.0 or total == 0.0:
        return 0.0
    resid = basis @ core
    np.subtract(mats, resid, out=resid)
    return float(np.sqrt(float(np.vdot(resid, resid).real) / (room * total)))


def rank2_fit(blocks: np.ndarray, power: int = 1, drop: float = _ROUND) -> tuple[np.ndarray, np.ndarray]:
    """Rank-2 factors ``U (..., p, 2)``, ``V (..., q, 2)`` with ``blocks ~= U V^T``, balanced gauge.

    A fixed Gaussian sketch finds the column space (exact for blocks of rank <= 2); ``power``
    subspace iterations sharpen it when the blocks are only close to rank 2. The final 2 x q
    core is diagonalized by a tiny SVD so both factors carry sqrt of the singular values; a
    second singular value at most ``drop`` times the first is dropped (see :func:`_balanced`).
    """
    basis, core = _range(blocks.reshape(-1, *blocks.shape[-2:]), power)
    return _balanced(basis, core, drop, blocks.shape)


def _range(mats: np.ndarray, power: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Orthonormal ``basis (B, p, 2)`` of the blocks' dominant column space and ``core = basis^T B``."""
    q = mats.shape[-1]
    omega = np.random.default_rng(_SEED).standard_normal((q, _RANK))
    basis, _ = np.linalg.qr(mats @ omega)
    for _ in range(power):
        basis, _ = np.linalg.qr(mats @ (mats.transpose(0, 2, 1) @ basis))
    return basis, basis.transpose(0, 2, 1) @ mats  # core: (B, 2, q)


def _balanced(basis: np.ndarray, core: np.ndarray, drop: float,
              shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Both factors with sqrt of the singular values; second directions below ``drop`` removed.

    A rank-1 block's second direction is its noise (or rounding); left in, it would add a
    spurious third direction to the next split's blocks, so it is dropped outright.
    """
    p, q = shape[-2:]
    u, sing, vt = np.linalg.svd(core, full_matrices=False)
    sing = np.where(sing <= drop * sing[:, :1], 0.0, sing)
    root = np.sqrt(sing)
    left = (basis @ u) * root[:, None, :]
    right = vt.transpose(0, 2, 1) * root[:, None, :]
    return left.reshape(*shape[:-2], p, _RANK), right.reshape(*shape[:-2], q, _RANK)
