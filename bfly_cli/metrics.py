"""Accuracy measures, reported together every time.

The seed paper's RMSE is *absolute* and shrinks with N (``||M - T||_F / N`` for a real target,
``/ (sqrt(2) N)`` for a complex one: the mean over all real scalars); the relative Frobenius error
does not shrink with N and is what "exact" is judged by; the max abs error bounds any one entry.
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np

EXACT_REL_ERROR = {"float64": 1e-12, "complex128": 1e-12, "float32": 1e-5, "complex64": 1e-5}


# Whole-matrix measures walk the matrices in blocks of about this many bytes, so a measure never
# holds more than a few blocks of temporaries beside its inputs: at N = 16384 a complex128 copy is
# 4 GiB, and the unblocked measures held five of them at once (learning's memory peak).
BLOCK_BYTES = 16 << 20


def error_report(approx: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """``rmse`` (paper's definition), ``rel_error`` and ``max_abs_error`` of ``approx`` vs ``target``.

    Measured on the pair divided by one power of two (exact) that brings the larger of the two to
    about 1: squaring entries of 1e-200 would underflow to 0 (an all-zero ``approx`` would then
    measure rel_error 0) and entries of 1e160 overflow. ``rel_error`` is thereby scale-invariant;
    the absolute measures are scaled back. Non-finite entries give non-finite measures, never 0.
    """
    approx = np.asarray(approx)
    return error_report_blocks(((cols, approx[:, cols]) for cols in column_blocks(approx)), target)


def error_report_blocks(blocks: Iterable[tuple[slice, np.ndarray]], target: np.ndarray) -> dict[str, float]:
    """:func:`error_report` of an approximation given as column blocks ``(columns, approx[:, columns])``
    that together cover every column once (:meth:`Factors.dense_blocks`), so learning measures a
    factorization without a dense copy of it beside the target.

    Each block is measured on its own power-of-two scale (see :func:`error_report`) and the sums
    of squares are combined in scaled form, so no scale is lost between blocks either.
    """
    target = np.asarray(target)
    wide = np.complex128 if np.iscomplexobj(target) else np.float64
    diff_sq, target_sq, peak = _ScaledSquares(), _ScaledSquares(), 0.0
    for cols, block in blocks:
        wide = np.complex128 if np.iscomplexobj(block) else wide
        part = target[:, cols]
        exponent = magnitude_exponent(block, part)
        diff = scale_by_power_of_two(np.asarray(block, dtype=wide), -exponent) - scale_by_power_of_two(part, -exponent)
        diff_sq.add(float(np.linalg.norm(diff)), exponent)
        target_sq.add(float(np.linalg.norm(scale_by_power_of_two(part, -exponent))), exponent)
        peak = _nan_max(peak, _ldexp(float(np.max(np.abs(diff))), exponent) if diff.size else 0.0)
    n = target.shape[0]
    scalars = math.sqrt(2) * n if np.iscomplexobj(target) else n
    fro = diff_sq.norm()
    return {
        "rmse": diff_sq.norm(scalars),
        "rel_error": diff_sq.ratio(target_sq) if target_sq.total > 0 else fro,
        "max_abs_error": peak,
    }


class _ScaledSquares:
    """A sum of squares kept as ``total * 4**exponent`` (``total`` near 1), so norms of blocks on
    different power-of-two scales add without overflow or underflow of the sum itself."""

    def __init__(self) -> None:
        self.total, self.exponent = 0.0, 0

    def add(self, norm: float, exponent: int) -> None:
        """Add ``(norm * 2**exponent)**2``."""
        if self.total == 0.0:
            self.total, self.exponent = norm * norm, exponent
        elif exponent > self.exponent and math.isfinite(norm):
            self.total, self.exponent = self.total * _pow4(self.exponent - exponent) + norm * norm, exponent
        else:
            self.total += norm * norm * _pow4(exponent - self.exponent)

    def norm(self, divisor: float = 1.0) -> float:
        """``sqrt`` of the sum over ``divisor``, as a float (inf past float64's range)."""
        return _ldexp(math.sqrt(self.total) / divisor, self.exponent)

    def ratio(self, other: "_ScaledSquares") -> float:
        """``self.norm() / other.norm()`` without forming either (both could be out of range)."""
        return _ldexp(math.sqrt(self.total) / math.sqrt(other.total), self.exponent - other.exponent)


def _pow4(exponent: int) -> float:
    """``4**exponent`` as a float, 0 below float64's range, never an OverflowError."""
    return _ldexp(1.0, 2 * exponent)


def _nan_max(a: float, b: float) -> float:
    """The larger of two floats, NaN when either is (Python's ``max`` drops a NaN by position)."""
    return a if math.isnan(a) or a >= b else b


def block_slices(length: int, item_bytes: int, budget: int | None = None) -> list[slice]:
    """Slices of ``range(length)`` whose items (``item_bytes`` each: a row, a column, a slab row)
    add up to about ``budget`` bytes (default :data:`BLOCK_BYTES`; at least one item each)."""
    step = max(1, (BLOCK_BYTES if budget is None else budget) // max(1, item_bytes))
    return [slice(start, min(start + step, length)) for start in range(0, length, step)] or [slice(0, 0)]


def column_blocks(array: np.ndarray) -> list[slice]:
    """Column slices of ``array`` of about :data:`BLOCK_BYTES` each (at least one column)."""
    return block_slices(array.shape[-1], array.shape[0] * array.itemsize)


def row_blocks(array: np.ndarray) -> list[slice]:
    """Row slices of ``array`` of about :data:`BLOCK_BYTES` each (at least one row)."""
    rows = array.shape[0] if array.ndim else 1
    return block_slices(rows, (array.size // max(rows, 1)) * array.itemsize)


def magnitude_exponent(*arrays: np.ndarray) -> int:
    """``e`` with the largest real or imaginary part of any entry in ``[2**(e-1), 2**e)``: dividing by
    ``2**e`` brings it to ``[0.5, 1)`` exactly. 0 when every entry is zero or a value is not finite
    (nothing to normalize: the measures of non-finite values are non-finite anyway)."""
    peak = 0.0
    for array in arrays:
        a = np.asarray(array)
        for rows in (row_blocks(a) if a.ndim else [Ellipsis]):
            part = a[rows]
            if part.size:
                parts = (part.real, part.imag) if np.iscomplexobj(part) else (part,)
                peak = max(peak, *(float(np.max(np.abs(p))) for p in parts))
    if peak == 0.0 or not math.isfinite(peak):
        return 0
    return math.frexp(peak)[1]


def scale_by_power_of_two(array: np.ndarray, exponent: int) -> np.ndarray:
    """``array * 2**exponent`` without rounding (``ldexp``: no intermediate ``2**exponent`` that
    could itself overflow), real and imaginary parts apart; integers become float64."""
    a = np.asarray(array)
    if a.dtype.kind not in "fc":
        a = a.astype(np.float64)
    if exponent == 0:
        return a
    if a.dtype.kind == "c":
        out = np.empty_like(a)
        out.real, out.imag = np.ldexp(a.real, exponent), np.ldexp(a.imag, exponent)
        return out
    return np.ldexp(a, exponent)


def _ldexp(value: float, exponent: int) -> float:
    """``value * 2**exponent`` as a float: inf past the float64 range, not OverflowError."""
    with np.errstate(over="ignore"):
        return float(np.ldexp(value, exponent))


def exact_threshold(dtype: str) -> float:
    """rel_error at or below which a result counts as exact in ``dtype`` (1e-12 in float64)."""
    return EXACT_REL_ERROR.get(str(dtype), 1e-12)


UNIT_ROUNDOFF = {"float32": 2.0**-24, "float64": 2.0**-53}
PRECISION_GATE = 10.0  # exact "to input precision": rel_error <= this many unit round-offs of the input
NEAR_EXACT = 1e-3  # a structured fit at or below this is the structure plus noise, not an approximation


def input_precision(matrix: np.ndarray) -> str:
    """``"float32"`` when every value of ``matrix`` is float32-representable, else ``"float64"``.

    A float32 (or complex64) array is float32 by its dtype; a float64 array read back from a
    float32 file is float32 by its values (its rounding is the float32 rounding, a ~3e-8 relative
    perturbation that no float64 structure can fit below). The test runs on the matrix scaled by a
    power of two to a largest entry near 1 (exact), so it judges the values' precision, not their
    scale: a float32 matrix times 2**-700 is still float32. Entries that float32 cannot hold even
    then (a range of magnitudes wider than float32's) count as float64.
    """
    m = np.asarray(matrix)
    if m.dtype in (np.float32, np.complex64):
        return "float32"
    if m.dtype not in (np.float64, np.complex128) or m.size == 0:
        return "float64"
    exponent = magnitude_exponent(m)  # the scaled values' precision, not their scale (exact)
    narrow = np.complex64 if np.iscomplexobj(m) else np.float32
    for rows in row_blocks(m):  # blocks: a whole-matrix copy is 4 GiB at N = 16384
        part = scale_by_power_of_two(m[rows], -exponent)
        with np.errstate(over="ignore", invalid="ignore"):
            if not np.array_equal(part.astype(narrow).astype(m.dtype), part):
                return "float64"
    return "float32"


def exactness(rel_error: float, precision: str = "float64", working: str = "float64") -> str:
    """The wording of a result: ``exact``, ``exact to input precision (float32)``, ``near-exact`` or
    ``approximate``.

    ``working`` is the real dtype the factors were computed in (its own exact threshold applies);
    ``precision`` the input's (:func:`input_precision`). The wording never decides which result a
    user gets (``--solver auto`` keeps the most accurate structured fit); it says how far to trust it.
    """
    if not math.isfinite(rel_error):
        return "approximate"
    if rel_error <= exact_threshold(working):
        return "exact"
    if precision == "float32" and rel_error <= PRECISION_GATE * UNIT_ROUNDOFF["float32"]:
        return "exact to input precision (float32)"
    if rel_error <= NEAR_EXACT:
        return "near-exact"
    return "approximate"


def working_precision(dtype: str) -> str:
    """The real precision factors of ``dtype`` compute in (``float32`` for complex64 too): whose
    exact threshold :func:`exactness` applies."""
    return "float32" if str(dtype) in ("float32", "complex64") else "float64"


def is_exact(wording: str) -> bool:
    """True for the two ``exact`` wordings of :func:`exactness`."""
    return wording.startswith("exact")
