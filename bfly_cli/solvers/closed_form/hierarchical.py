"""Closed-form hierarchical butterfly factorization for a *fixed* column order.

Notation (see ``docs/algorithms.md`` and the twiddle layout in :mod:`bfly_cli.factors`): a
butterfly of size n = 2^k is ``X . Y`` where ``Y`` holds the l lowest stages (block diagonal:
2^(k-l) independent butterflies of size 2^l) and ``X`` the k-l highest (2^l interleaved
butterflies of size 2^(k-l)). Writing row ``(c, b)`` and column ``(a, e)`` with b, e the low l bits,
``T[(c,b),(a,e)] = X_b[c, a] * Y_a[b, e]``: every block with fixed (a, b) is rank one. So one
batched rank-one step over all blocks splits T into the two half-size problems, and a balanced
recursion (l = k // 2) factors the whole matrix in O(N^2) per tree level.

When ``T`` is exactly a butterfly the result is exact; otherwise every split is the best rank-one
fit of its blocks, which makes this the standard closed-form approximation.
"""

from __future__ import annotations

import numpy as np

from .rank_one import rank1


def factor_butterfly(matrix: np.ndarray, max_iter: int = 200, *, rows: np.ndarray | None = None,
                     cols: np.ndarray | None = None) -> np.ndarray:
    """Twiddles ``(L, N/2, 2, 2)`` of the butterfly closest to ``matrix[rows][:, cols]``.

    ``max_iter`` caps the rank-one sweeps per split. Exact blocks converge in one sweep, so a
    caller that only wants the exact answer (and will reject anything else, as ``auto`` does
    with the B.P route) can pass a small cap and skip the slow convergence on non-rank-one blocks.

    ``rows`` and ``cols`` (default: as they are) are read straight into the first split's block
    layout (:func:`ordered_blocks`): the ordered matrix and its block transpose were two more N x N
    copies at the solver's memory peak (8 GiB at N = 16384 in complex128).
    """
    matrix = np.asarray(matrix)
    n = matrix.shape[0]
    if n == 2:  # one stage: the ordered 2 x 2 matrix is its own twiddle
        order = np.arange(2)
        picked = matrix[np.ix_(order if rows is None else rows, order if cols is None else cols)]
        return _factor_batch(picked[None], max_iter)[:, 0]
    u, w = rank1(ordered_blocks(matrix, rows, cols), max_iter=max_iter)
    return _join_split(u, w, n, max_iter)[:, 0]


def ordered_blocks(matrix: np.ndarray, rows: np.ndarray | None, cols: np.ndarray | None) -> np.ndarray:
    """The first split's blocks ``(1, a, b, c, e)`` of ``matrix[rows][:, cols]``, contiguous, in one
    gather (what :func:`split_blocks` views and :func:`rank1` then copies)."""
    n = matrix.shape[0]
    k = n.bit_length() - 1
    low = k // 2
    hi_size, lo_size = 1 << (k - low), 1 << low
    row_index = (np.arange(n) if rows is None else np.asarray(rows)).reshape(hi_size, lo_size)  # [c, b]
    col_index = (np.arange(n) if cols is None else np.asarray(cols)).reshape(hi_size, lo_size)  # [a, e]
    out = np.empty((1, hi_size, lo_size, hi_size, lo_size), dtype=matrix.dtype)
    for a in range(hi_size):  # one gather per column group: numpy's broadcast gather comes out non-contiguous
        out[0, a] = matrix[row_index.T[:, :, None], col_index[a][None, None, :]]
    return out


def _factor_batch(mats: np.ndarray, max_iter: int = 200) -> np.ndarray:
    """Factor K butterflies of size n at once; returns twiddles of shape ``(k, K, n/2, 2, 2)``."""
    if mats.shape[1] == 2:
        return mats[None, :, None, :, :].copy()
    _, u, w = split_blocks(mats, max_iter)
    return _join_split(u, w, mats.shape[1], max_iter)


def _join_split(u: np.ndarray, w: np.ndarray, n: int, max_iter: int) -> np.ndarray:
    """Twiddles ``(k, K, n/2, 2, 2)`` from the rank-one factors of a split: both halves factored."""
    return join_halves(_factor_batch(as_upper(u), max_iter), _factor_batch(as_lower(w), max_iter), n)


def split_blocks(mats: np.ndarray, max_iter: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The middle split of K matrices (n >= 4): their blocks and each block's best rank-one fit.

    Rows ``(c, b)`` and columns ``(a, e)`` give blocks indexed ``(K, a, b)``, each a ``(c, e)``
    matrix; returns ``blocks (K, a, b, c, e)``, ``u (K, a, b, c)``, ``w (K, a, b, e)``. Shared by
    the plain factorization and the orthonormalization sweep (:mod:`..approximate.orthonormal`).
    """
    count, n, _ = mats.shape
    k = n.bit_length() - 1
    low = k // 2
    hi_size, lo_size = 1 << (k - low), 1 << low
    blocks = mats.reshape(count, hi_size, lo_size, hi_size, lo_size).transpose(0, 3, 2, 1, 4)
    u, w = rank1(blocks, max_iter=max_iter)
    return blocks, u, w


def as_upper(u: np.ndarray) -> np.ndarray:
    """``X_b[c, a] = u[a, b, c]``: the upper half's blocks, batch ``(K, b)``."""
    count, hi, lo, width = u.shape
    return u.transpose(0, 2, 3, 1).reshape(count * lo, width, hi)


def as_lower(w: np.ndarray) -> np.ndarray:
    """``Y_a[b, e] = w[a, b, e]``: the lower half's blocks, batch ``(K, a)``."""
    count, hi, lo, width = w.shape
    return w.reshape(count * hi, lo, width)


def join_halves(tw_upper: np.ndarray, tw_lower: np.ndarray, n: int) -> np.ndarray:
    """The halves' twiddles (batches ``(K, b)`` and ``(K, a)``) in the layout ``(k, K, n/2, 2, 2)``.

    A stage of X with local pair j acting for fixed b is global pair j * 2^low + b.
    """
    k = n.bit_length() - 1
    low = k // 2
    lo_size, hi_size = 1 << low, 1 << (k - low)
    count = tw_lower.shape[1] // hi_size
    tw_upper = tw_upper.reshape(k - low, count, lo_size, hi_size // 2, 2, 2).transpose(0, 1, 3, 2, 4, 5)
    return np.concatenate([tw_lower.reshape(low, count, n // 2, 2, 2), tw_upper.reshape(k - low, count, n // 2, 2, 2)])
