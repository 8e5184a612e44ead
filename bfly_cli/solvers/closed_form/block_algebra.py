"""2x2 block algebra shared by the basis read-offs (:mod:`.eigenbasis`, :mod:`.two_sided`).

Matrices of 2x2 blocks are kept as planes ``(2, 2, K, h, h)`` (entry ``[i, j, k, b, p]``) so that
every operation is elementwise over the blocks; frames are ``(..., 2, 2)`` stacks.
"""

from __future__ import annotations

import numpy as np

TIE = 1e-9  # relative difference below which two eigenvector entries count as equal (ordering)


def similarity(blocks: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """``out[i, n, k, b, b'] = sum_jl left[k, b, i, j] blocks[j, l, k, b, b'] right[k, b', l, n]``.

    Written plane by plane into one output, one output row ``i`` of the left product alive at a
    time: the blocks are the whole matrix (4 GiB at N = 16384 in complex128), and building all
    four left products and then stacking the four results held about four such copies at once.
    """
    lw = left.transpose(2, 3, 0, 1)[..., None]  # (i, j, K, h, 1)
    rw = right.transpose(2, 3, 0, 1)[:, :, :, None, :]  # (l, n, K, 1, h)
    out = np.empty(blocks.shape, dtype=np.result_type(blocks, left, right))
    for i in range(2):
        mid = [lw[i, 0] * blocks[0, l] + lw[i, 1] * blocks[1, l] for l in range(2)]
        for n in range(2):
            np.multiply(mid[0], rw[0, n], out=out[i, n])
            out[i, n] += mid[1] * rw[1, n]
    return out


def inv2(m: np.ndarray) -> np.ndarray:
    """Inverse of every 2x2 matrix in ``(..., 2, 2)`` (closed form; a singular one gives inf/nan)."""
    a, b, c, d = m[..., 0, 0], m[..., 0, 1], m[..., 1, 0], m[..., 1, 1]
    det = a * d - b * c
    det = np.where(det == 0, np.finfo(np.float64).tiny, det)
    return np.stack([np.stack([d, -b], -1), np.stack([-c, a], -1)], -2) / det[..., None, None]


def unit_scale(g: np.ndarray) -> np.ndarray:
    """The 2x2 matrices scaled to unit Frobenius norm (a zero one is left alone).

    A scalar, not per column: frames carried from a root ``F_0`` are then exactly
    ``G_b D_b G_0^-1 F_0`` up to a scalar, so one common correction fits every block.
    """
    norm = np.sqrt(np.sum(sq(g), axis=(-2, -1), keepdims=True))
    return g / np.where(norm > 0, norm, 1.0)


def column_gauge(g: np.ndarray) -> np.ndarray:
    """Each eigenvector (column of the 2x2 ``g``) scaled to unit norm with a real positive pivot.

    Column scaling is a free gauge here (see the module docstring); pinning the pivot to the
    first entry that is largest up to a relative :data:`TIE` makes the twiddles stable under
    rounding-level changes (equal moduli are the usual case for Fourier-like bases).
    """
    mag = np.abs(g)
    first_is_pivot = mag[..., 0, :] >= (1.0 - TIE) * mag[..., 1, :]
    pivot = np.where(first_is_pivot, g[..., 0, :], g[..., 1, :])
    norm = np.sqrt(mag[..., 0, :] ** 2 + mag[..., 1, :] ** 2)
    scale = np.where(np.abs(pivot) > 0, np.abs(pivot) / np.where(pivot == 0, 1, pivot), 1) / np.where(norm > 0, norm, 1)
    return g * scale[..., None, :]


def sq(x: np.ndarray) -> np.ndarray:
    """``|x|^2`` elementwise without a square root."""
    return x.real * x.real + x.imag * x.imag


def canonical_order(g: np.ndarray) -> np.ndarray:
    """Columns of each gauged ``g`` ``(M, 2, 2)`` in a fixed order read off the vectors themselves.

    Which half comes first is a free choice; LAPACK's order would let rounding make it. Larger
    ``|g[0]|`` first, then larger real and imaginary part of ``g[1]`` (ties up to :data:`TIE`).
    """
    a, b = g[..., 0], g[..., 1]
    keys = [(np.abs(a[..., 0]), np.abs(b[..., 0])), (a[..., 1].real, b[..., 1].real), (a[..., 1].imag, b[..., 1].imag)]
    swap = np.zeros(g.shape[:-2], dtype=bool)
    open_ = np.ones(g.shape[:-2], dtype=bool)
    for x, y in keys:
        swap |= open_ & (y > x + TIE)
        open_ &= np.abs(x - y) <= TIE
    out = g.copy()
    out[swap] = g[swap][..., ::-1]
    return out


def condition(m: np.ndarray) -> np.ndarray:
    """``||m||_F^2 / |det m|`` of every 2x2 matrix: 2 for a scaled unitary, large when singular."""
    det = np.abs(m[..., 0, 0] * m[..., 1, 1] - m[..., 0, 1] * m[..., 1, 0])
    return np.sum(sq(m), axis=(-2, -1)) / np.maximum(det, 1e-300)
