"""Batched best rank-one approximation, the only numerical kernel of the closed-form solver.

Every split of the hierarchical factorization asks for ``M[k] ~= u[k] (x) w[k]`` for a whole batch
of small matrices at once. Alternating least squares (power iteration on ``M M^H``) is used
instead of full SVDs: one sweep is exact when the block really is rank one, and each sweep costs
two batched mat-vecs, so the whole split stays O(size of the matrix). Blocks that are not rank one
keep iterating until the direction stops moving.
"""

from __future__ import annotations

import numpy as np

_TIE = 1e-9  # relative magnitude difference below which two entries count as tied for the pivot
_REGATHER = 0.75  # re-copy the unconverged blocks once fewer than this fraction of the copy remain


def rank1(blocks: np.ndarray, max_iter: int = 200, tol: float = 1e-14) -> tuple[np.ndarray, np.ndarray]:
    """Best rank-one factors of each matrix in ``blocks`` (shape ``(..., m, p)``).

    Returns ``u`` of shape ``(..., m)`` and ``w`` of shape ``(..., p)`` with
    ``blocks ~= u[..., :, None] * w[..., None, :]``, in a canonical gauge: ``|u| = |w|`` and the
    largest-magnitude entry of ``u`` real positive, so the same input always gives the same bytes.
    """
    batch_shape = blocks.shape[:-2]
    m, p = blocks.shape[-2:]
    mats = blocks.reshape(-1, m, p)
    tiny = float(np.finfo(mats.real.dtype).tiny)
    u = _start_vectors(mats)
    w = _fit_right(mats, u, tiny)
    active = np.arange(mats.shape[0])
    sub = mats  # a copy holding the active blocks (and a few converged ones, swept along)
    local = active  # where the active blocks sit in sub
    for _ in range(max_iter):
        if local.size < _REGATHER * sub.shape[0]:  # re-copy only when many have converged
            sub, local = mats[active], np.arange(active.size)
        u_new = _fit_left(sub, w[active] if local.size == sub.shape[0] else _spread(w, active, local, sub), tiny)
        w_new = _fit_right(sub, u_new, tiny)
        u_new, w_new = u_new[local], w_new[local]
        moved = _direction_change(u[active], u_new, tiny)
        u[active], w[active] = u_new, w_new
        keep = moved > tol
        active, local = active[keep], local[keep]
        if active.size == 0:
            break
    u, w = _canonical_gauge(u, w, tiny)
    return u.reshape(*batch_shape, m), w.reshape(*batch_shape, p)


def _spread(w: np.ndarray, active: np.ndarray, local: np.ndarray, sub: np.ndarray) -> np.ndarray:
    """Right vectors for every block of ``sub``: the active ones' current ``w``, ones elsewhere.

    The converged blocks still in ``sub`` are swept along (cheaper than copying ``sub`` again) and
    their results discarded, so any finite vector does for them.
    """
    out = np.ones((sub.shape[0], w.shape[1]), dtype=w.dtype)
    out[local] = w[active]
    return out


def _start_vectors(mats: np.ndarray) -> np.ndarray:
    """The column of largest norm: already the exact left factor of a rank-one block."""
    best = np.argmax(_column_energy(mats), axis=1)
    return mats[np.arange(mats.shape[0]), :, best]


def _column_energy(mats: np.ndarray) -> np.ndarray:
    """``sum_m |M[b, m, p]|^2`` as one pass with no temporaries (complex read as real pairs)."""
    if np.iscomplexobj(mats) and mats.flags.c_contiguous:
        flat = mats.view(mats.real.dtype)  # (B, m, 2p): re, im interleaved
        return np.einsum("bmk,bmk->bk", flat, flat).reshape(mats.shape[0], mats.shape[2], 2).sum(axis=2)
    if not np.iscomplexobj(mats):
        return np.einsum("bmp,bmp->bp", mats, mats)
    return np.sum(np.abs(mats) ** 2, axis=1)


def _fit_right(mats: np.ndarray, u: np.ndarray, tiny: float) -> np.ndarray:
    """Least-squares ``w`` for fixed ``u``: ``w = u^H M / |u|^2`` (zero where ``u`` is zero)."""
    norm2 = np.sum(np.abs(u) ** 2, axis=1)
    # einsum, not a batched matmul: thousands of tiny BLAS calls each pay OpenBLAS's threading
    # overhead (measured 2-4x slower at N = 4096 on a loaded 2-core machine)
    w = np.einsum("bm,bmp->bp", u.conj(), mats)
    return w / np.maximum(norm2, tiny)[:, None]


def _fit_left(mats: np.ndarray, w: np.ndarray, tiny: float) -> np.ndarray:
    """Least-squares ``u`` for fixed ``w``: ``u = M w^H / |w|^2``."""
    norm2 = np.sum(np.abs(w) ** 2, axis=1)
    u = np.einsum("bmp,bp->bm", mats, w.conj())
    return u / np.maximum(norm2, tiny)[:, None]


def _direction_change(a: np.ndarray, b: np.ndarray, tiny: float) -> np.ndarray:
    """1 - |cos angle| between matching rows of ``a`` and ``b`` (0 when they are parallel)."""
    na = np.linalg.norm(a, axis=1)
    nb = np.linalg.norm(b, axis=1)
    dot = np.abs(np.sum(a.conj() * b, axis=1))
    denom = na * nb
    out = np.zeros_like(na)
    ok = denom > tiny
    out[ok] = 1.0 - dot[ok] / denom[ok]
    return out


def _pivot_index(u: np.ndarray) -> np.ndarray:
    """Per row, the first entry whose magnitude is the largest up to a relative ``_TIE``.

    A plain argmax would let rounding decide between entries of equal magnitude (every entry of
    a DFT block has the same modulus), so a change in summation order would flip the gauge; with
    the tolerance the canonical form is stable under rounding-level changes of the input.
    """
    mag = np.abs(u)
    return np.argmax(mag >= (1.0 - _TIE) * mag.max(axis=1, keepdims=True), axis=1)


def _canonical_gauge(u: np.ndarray, w: np.ndarray, tiny: float) -> tuple[np.ndarray, np.ndarray]:
    """Rescale so ``|u| = |w|`` and the largest entry of ``u`` is real positive (deterministic)."""
    nu = np.linalg.norm(u, axis=1)
    nw = np.linalg.norm(w, axis=1)
    ok = (nu > tiny) & (nw > tiny)
    scale = np.ones_like(nu)
    scale[ok] = np.sqrt(nw[ok] / nu[ok])
    pivot = np.take_along_axis(u, _pivot_index(u)[:, None], axis=1)[:, 0]
    phase = np.ones_like(pivot)
    nz = np.abs(pivot) > tiny
    phase[nz] = np.abs(pivot[nz]) / pivot[nz]
    u = u * (scale * phase)[:, None]
    w = w / (scale * phase)[:, None]
    u[~ok] = 0
    w[~ok] = 0
    return u, w
