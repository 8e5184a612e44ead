"""Eigendecomposition of a matrix diagonalized by a butterfly basis, in O(N^2) with no dense ``eig``.

Suppose ``A = W diag(lam) W^-1`` with ``W`` an increasing-stride butterfly (rows in natural order,
columns in the butterfly's own order). Split ``W = G . diag(W0, W1)``: ``G`` is the last stage
(stride N/2, one 2x2 block ``G_b`` per row pair ``(b, b + N/2)``) and ``W0``, ``W1`` are the
half-size butterflies below it. Then ``A = G diag(A0, A1) G^-1`` with ``A_i = W_i diag(lam_i) W_i^-1``,
so every 2x2 block ``A_bb'`` (rows ``b, b+N/2``, columns ``b', b'+N/2``) satisfies::

    A_bb' = G_b diag(A0[b, b'], A1[b, b']) G_b'^-1.

Hence ``G_b`` is the eigenvector matrix of *any* 2x2 matrix built from block row ``b`` that returns to
``b``: ``A_bb`` itself, ``(A^2)_bb = sum_b' A_bb' A_b'b``, ... A random combination of the two has
distinct eigenvalues generically, which fixes ``G_b`` up to column scaling (harmless: it is a
diagonal similarity of the half problems) and column order; the order is made consistent with
``b = 0`` by asking ``G_b^-1 (A + A D A)_b0 G_0`` to be diagonal rather than anti-diagonal. Reading
the diagonals of ``G_b^-1 A_bb' G_b'`` gives ``A0`` and ``A1``, which have the same structure; the
off-diagonals must vanish, and their size is the certificate that the structure is really there.

All sub-problems of one level are solved as one batch: 2N^2 work in all, against ~10 N^3 for a
dense eigensolver (N = 4096: milliseconds-to-seconds instead of minutes).
"""

from __future__ import annotations

import numpy as np

from .. import RouteUnavailable

_SEED = 20190609  # fixed: the random mixing weights must not make the output vary between runs
_AMBIGUOUS = 1e-8  # relative size below which a block carries no ordering information
_CHUNK = 4096  # complex numbers per buffer in the chunked loops (64 KiB: cache-sized)


def butterfly_eigenbasis(a: np.ndarray, stop_above: float = np.inf) -> tuple[np.ndarray, np.ndarray, float]:
    """Twiddles ``(L, N/2, 2, 2)`` of ``W``, eigenvalues ``lam`` (``A = W diag(lam) W^-1``) and residual.

    The residual is the largest off-diagonal mass met while splitting, relative to ``||A||_F``:
    about 1e-16 when ``A`` really has this structure, O(1) when it does not. Once it exceeds
    ``stop_above`` the rest of the work is skipped (the answer is already "no"; the residual is then
    only a lower bound, and the twiddles and eigenvalues returned are incomplete and must not be
    used). Raises
    :class:`RouteUnavailable` when a split is undetermined (two equal eigenvalues in a 2x2 problem,
    or no block linking a row pair to the reference pair).
    """
    n = a.shape[0]
    levels = n.bit_length() - 1
    rng = np.random.default_rng(_SEED)
    mats = np.asarray(a, dtype=np.complex128)[None]
    total = float(np.linalg.norm(mats))
    if total == 0.0:
        raise RouteUnavailable("the matrix is zero, so it has no eigenvector basis to read a butterfly from")
    twiddle = np.empty((levels, n // 2, 2, 2), dtype=np.complex128)
    residual = 0.0
    for lev in range(levels - 1, -1, -1):
        blocks = _pair_blocks(mats)
        g = _stage_blocks(blocks, rng)
        halves, off = _split(blocks, g, limit=stop_above * total)
        twiddle[lev] = g.reshape(n // 2, 2, 2)
        residual = max(residual, off / total)
        mats = halves
        if residual > stop_above:
            return twiddle, np.full(n, np.nan, dtype=np.complex128), residual
    return twiddle, mats.reshape(n), residual


def _pair_blocks(mats: np.ndarray) -> np.ndarray:
    """``(K, m, m)`` -> ``(2, 2, K, h, h)``: ``[i, j, k, b, b']`` is entry (i, j) of the 2x2 block of
    row pair b and column pair b' (a view: component planes keep the arithmetic elementwise)."""
    count, m, _ = mats.shape
    h = m // 2
    return mats.reshape(count, 2, h, 2, h).transpose(1, 3, 0, 2, 4)


def _mixing(blocks: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``S = A + rho A D A`` restricted to what is needed: its diagonal blocks and block column 0.

    ``D`` is a random unit-modulus diagonal (per column pair), ``rho`` balances the two terms.
    Both results share the eigenvector structure: ``S_bb'' = G_b diag(.) G_b''^-1``. Returned as
    ``(K, h, 2, 2)`` arrays. Block column 0 of ``A D A`` is one batched matrix-vector product;
    the diagonal blocks are row-times-column dot products, computed on chunks of pairs so the
    columns are read through small transposed copies (contiguous, cache-sized) instead of a
    strided pass over the whole matrix.
    """
    count, h = blocks.shape[2:4]
    phase = np.exp(2j * np.pi * rng.random(h))
    scale = np.sqrt(_energy(blocks) / (4 * h * h))  # rms entry, (K,)
    rho = 1.0 / np.maximum(scale * np.sqrt(h), np.finfo(np.float64).tiny)
    full = blocks.transpose(2, 0, 3, 1, 4).reshape(count, 2 * h, 2 * h)  # A, rows/cols (half, pair)
    weight = np.concatenate([phase, phase])  # D on the full column index
    col = full[:, :, ::h] * weight[None, :, None]  # D A[:, (l, 0)], (K, m, 2)
    linked = (full @ col).reshape(count, 2, h, 2).transpose(0, 2, 1, 3)
    col0 = blocks[:, :, :, :, 0].transpose(2, 3, 0, 1) + rho[:, None, None, None] * linked
    diag = np.einsum("ilkbb->kbil", blocks).copy()
    product = _diagonal_products(full, weight, h)
    diag += rho[:, None, None, None] * product
    return diag, col0


def _diagonal_products(full: np.ndarray, weight: np.ndarray, h: int) -> np.ndarray:
    """``(A D A)[(i, b), (l, b)]`` as ``(K, h, 2, 2)``, chunk by chunk of pairs ``b``.

    Per chunk, the needed columns of ``D A`` are copied transposed into one reused buffer (a
    fresh temporary per chunk would be page-faulted in every time) and each pair's 2x2 block is
    one ``(2, m) @ (m, 2)`` product: about 3x faster than a dot product that strides down whole
    columns of ``A``.
    """
    count, m, _ = full.shape
    out = np.empty((count, h, 2, 2), dtype=np.complex128)
    step = min(h, 64)
    rows_all = full.reshape(count, 2, h, m)
    cols_all = full.reshape(count, m, 2, h)
    buffer = np.empty((count, step, 2, m), dtype=np.complex128)
    for start in range(0, h, step):
        pairs = slice(start, min(h, start + step))
        rows = rows_all[:, :, pairs].transpose(0, 2, 1, 3)  # (K, r, 2, m): rows (i, b)
        cols = buffer[:, : pairs.stop - start]
        np.multiply(cols_all[:, :, :, pairs].transpose(0, 3, 2, 1), weight, out=cols)  # D A columns (l, b)
        out[:, pairs] = rows @ cols.transpose(0, 1, 3, 2)
    return out


def _energy(blocks: np.ndarray) -> np.ndarray:
    """``sum |A_k|^2`` per problem k of the ``(2, 2, K, h, h)`` block view, in one pass.

    When the view sits on a C-contiguous ``(K, m, m)`` array (the usual case) it is read as real
    numbers with no temporary; otherwise the plain formula.
    """
    mats = blocks.transpose(2, 0, 3, 1, 4)  # back to (K, 2, h, 2, h)
    if mats.flags.c_contiguous:
        flat = mats.reshape(mats.shape[0], -1).view(np.float64)
        return np.einsum("kx,kx->k", flat, flat)
    return np.sum(np.abs(blocks) ** 2, axis=(0, 1, 3, 4))


def _stage_blocks(blocks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The 2x2 blocks ``G_b`` ``(K, h, 2, 2)`` of the last stage, columns ordered consistently with b = 0."""
    diag, col0 = _mixing(blocks, rng)
    vals, g = np.linalg.eig(diag)
    _check_split(vals)
    g = _column_gauge(_reference_order(vals, g))
    probe = np.linalg.solve(g, col0) @ g[:, :1]  # G_b^-1 S_b0 G_0, (K, h, 2, 2)
    straight = np.abs(probe[..., 0, 0]) ** 2 + np.abs(probe[..., 1, 1]) ** 2
    crossed = np.abs(probe[..., 0, 1]) ** 2 + np.abs(probe[..., 1, 0]) ** 2
    level = np.sqrt(np.maximum(straight, crossed))
    ref = np.sqrt(np.sum(np.abs(col0) ** 2, axis=(2, 3))).max(axis=1, keepdims=True)
    if np.any(level <= _AMBIGUOUS * np.maximum(ref, np.finfo(np.float64).tiny)):
        raise RouteUnavailable("a row pair is not linked to the reference pair, so the eigenvector order is undetermined")
    swap = crossed > straight
    g[swap] = g[swap][..., ::-1]
    return g


def _reference_order(vals: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``g`` with the reference pair's (b = 0) eigenvectors in a fixed order: larger real part of
    the eigenvalue first (imaginary part on a tie up to a relative 1e-9).

    Which half problem comes first is a free choice; LAPACK's order would let rounding make it.
    The other pairs are then aligned with b = 0 by the caller.
    """
    v0, v1 = vals[:, 0, 0], vals[:, 0, 1]
    tie = 1e-9 * np.maximum(np.abs(v0), np.abs(v1))
    swap = (v0.real < v1.real - tie) | ((np.abs(v0.real - v1.real) <= tie) & (v0.imag < v1.imag))
    g = g.copy()
    g[swap, 0] = g[swap, 0][..., ::-1]
    return g


def _column_gauge(g: np.ndarray) -> np.ndarray:
    """Each eigenvector (column of the 2x2 ``g``) scaled to unit norm with a real positive pivot.

    LAPACK already returns unit columns with the largest entry real, but decides ties (equal
    moduli, the usual case for Fourier-like bases) by rounding; pinning the pivot to the first
    entry that is largest up to a relative 1e-9 makes the twiddles stable under rounding-level
    changes. Column scaling is a free gauge here (see the module docstring).
    """
    mag = np.abs(g)
    first_is_pivot = mag[..., 0, :] >= (1.0 - 1e-9) * mag[..., 1, :]  # (K, h, column)
    pivot = np.where(first_is_pivot, g[..., 0, :], g[..., 1, :])
    norm = np.sqrt(mag[..., 0, :] ** 2 + mag[..., 1, :] ** 2)
    scale = np.where(np.abs(pivot) > 0, np.abs(pivot) / np.where(pivot == 0, 1, pivot), 1) / np.where(norm > 0, norm, 1)
    return g * scale[..., None, :]


def _check_split(vals: np.ndarray) -> None:
    """Raise when a 2x2 problem has (numerically) repeated eigenvalues: ``G_b`` would be arbitrary."""
    gap = np.abs(vals[..., 0] - vals[..., 1])
    size = np.maximum(np.abs(vals[..., 0]), np.abs(vals[..., 1]))
    if np.any(gap <= 1e-9 * np.maximum(size.max(), np.finfo(np.float64).tiny)):
        raise RouteUnavailable(
            "repeated eigenvalues in a 2x2 split, so the eigenvector basis is not unique and no butterfly "
            "can be read off it"
        )


def _split(blocks: np.ndarray, g: np.ndarray, limit: float = np.inf) -> tuple[np.ndarray, float]:
    """Half problems ``(2K, h, h)`` from ``G_b^-1 A_bb' G_b'``, and the off-diagonal mass left over.

    Once the mass passes ``limit`` the answer is already "not this structure": the rest is
    skipped and the (incomplete) halves must not be used. A matrix without the structure is
    then rejected after one chunk of its first split instead of a whole level.

    Done on chunks of row pairs through a few preallocated, cache-sized buffers: fresh
    temporaries per chunk are at the mercy of the allocator, which may map (and page-fault)
    them anew each time, several times slower than the arithmetic. The two diagonal blocks are
    written straight into the output; the off-diagonal ones are only measured.
    """
    count, h = blocks.shape[2:4]
    ginv = np.linalg.inv(g)
    halves = np.empty((count, 2, h, h), dtype=np.complex128)
    right = [[g[:, None, :, l, n] for n in range(2)] for l in range(2)]  # (K, 1, h) column factors
    step = max(1, min(h, _CHUNK // max(1, count * h)))
    buffers = np.empty((6, count, step, h), dtype=np.complex128)
    off = 0.0
    for start in range(0, h, step):
        rows = slice(start, min(h, start + step))
        bufs = buffers[:, :, : rows.stop - start]
        left = [[bufs[2 * i + l] for l in range(2)] for i in range(2)]
        for i in range(2):
            for l in range(2):
                _combine(ginv[:, rows, i, 0, None], blocks[0, l, :, rows], ginv[:, rows, i, 1, None], blocks[1, l, :, rows],
                         left[i][l], bufs[4])
        for i in range(2):
            for n in range(2):
                out = halves[:, i, rows] if i == n else bufs[5]
                _combine(left[i][0], right[0][n], left[i][1], right[1][n], out, bufs[4])
                if i != n:
                    flat = out.reshape(-1)
                    off += float(np.vdot(flat, flat).real)
        if off > limit * limit:
            break
    return halves.reshape(2 * count, h, h), float(np.sqrt(off))


def _combine(a: np.ndarray, x: np.ndarray, b: np.ndarray, y: np.ndarray, out: np.ndarray, scratch: np.ndarray) -> None:
    """``out = a x + b y`` (the 2x2 products of :func:`_split`), with no temporaries."""
    np.multiply(a, x, out=out)
    np.multiply(b, y, out=scratch)
    out += scratch
