"""Thin and wide matrix products that BLAS runs on one thread.

The order discoveries multiply the whole matrix by a few probe vectors (or a few rows by the
whole matrix): a few million multiply-adds, above OpenBLAS's threading threshold. On a shared
machine, waking the other BLAS threads costs 10-40x the arithmetic (measured on a loaded
2-core machine: 11 ms against 0.7-1.3 ms in 128-row chunks for a real (1024, 1024) @ (1024, 2);
complex products were slower still, numpy's complex-by-real product casting its operand first).
So the products are cut into chunks of at most :data:`_SERIAL_WORK` multiply-adds, and a complex
operand is read as real pairs (its float view) against an interleaved real operand.
"""

from __future__ import annotations

import numpy as np

_SERIAL_WORK = 1 << 16  # multiply-adds per BLAS call: below OpenBLAS's threading threshold


def thin_product(mat: np.ndarray, probe: np.ndarray) -> np.ndarray:
    """``mat @ probe`` for a real ``probe (k, c)`` of a few columns, in row chunks of ``mat``."""
    if np.iscomplexobj(mat):
        flat = _float_view(mat)  # (r, 2k): re, im interleaved
        wide = np.zeros((2 * probe.shape[0], 2 * probe.shape[1]))
        wide[0::2, 0::2] = probe  # re * p -> real part
        wide[1::2, 1::2] = probe  # im * p -> imaginary part
        return thin_product(flat, wide).view(np.complex128)
    out = np.empty((mat.shape[0], probe.shape[1]), dtype=np.result_type(mat, probe))
    step = max(1, _SERIAL_WORK // max(1, mat.shape[1] * probe.shape[1]))
    for start in range(0, mat.shape[0], step):
        np.matmul(mat[start : start + step], probe, out=out[start : start + step])
    return out


def wide_product(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """``left @ right`` for a short ``left (G, r, K)`` and a wide ``right (G, K, k)``, in column
    chunks of ``right``. A complex pair is computed as one real product of ``[Re; Im] left``
    with the float view of ``right``."""
    if np.iscomplexobj(left) or np.iscomplexobj(right):
        r = left.shape[1]
        stacked = np.concatenate([left.real, left.imag], axis=1)  # (G, 2r, K)
        flat = _float_view(np.asarray(right, dtype=np.complex128))  # (G, K, 2k)
        prod = wide_product(stacked, flat)  # (G, 2r, 2k)
        real = prod[:, :r, 0::2] - prod[:, r:, 1::2]
        imag = prod[:, :r, 1::2] + prod[:, r:, 0::2]
        return real + 1j * imag
    groups, rows, inner = left.shape
    if rows * inner * right.shape[2] <= _SERIAL_WORK:  # each batch item's product is serial already
        return np.matmul(left, right)
    out = np.empty((groups, rows, right.shape[2]), dtype=np.result_type(left, right))
    width = max(1, _SERIAL_WORK // max(1, rows * inner))
    for g in range(groups):
        for start in range(0, right.shape[2], width):
            np.matmul(left[g], right[g, :, start : start + width], out=out[g, :, start : start + width])
    return out


def _float_view(mat: np.ndarray) -> np.ndarray:
    """The float view of a complex array (last axis made contiguous first when it is not)."""
    if mat.strides[-1] != mat.itemsize:
        mat = np.ascontiguousarray(mat)
    return mat.view(np.finfo(mat.dtype).dtype)
