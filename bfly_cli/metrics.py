"""Accuracy measures, reported together every time.

The seed paper's RMSE is *absolute* and shrinks with N (``||M - T||_F / N`` for a real target,
``/ (sqrt(2) N)`` for a complex one: the mean over all real scalars); the relative Frobenius error
does not shrink with N and is what "exact" is judged by; the max abs error bounds any one entry.
"""

from __future__ import annotations

import math

import numpy as np

EXACT_REL_ERROR = {"float64": 1e-12, "complex128": 1e-12, "float32": 1e-5, "complex64": 1e-5}


def error_report(approx: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """``rmse`` (paper's definition), ``rel_error`` and ``max_abs_error`` of ``approx`` vs ``target``."""
    diff = np.asarray(approx, dtype=np.complex128 if np.iscomplexobj(approx) or np.iscomplexobj(target) else np.float64) - target
    fro = float(np.linalg.norm(diff))
    n = target.shape[0]
    scalars = math.sqrt(2) * n if np.iscomplexobj(target) else n
    tnorm = float(np.linalg.norm(target))
    return {
        "rmse": fro / scalars,
        "rel_error": fro / tnorm if tnorm > 0 else fro,
        "max_abs_error": float(np.max(np.abs(diff))) if diff.size else 0.0,
    }


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
    perturbation that no float64 structure can fit below). Values beyond float32's range count as
    float64.
    """
    m = np.asarray(matrix)
    if m.dtype in (np.float32, np.complex64):
        return "float32"
    if m.dtype not in (np.float64, np.complex128) or m.size == 0:
        return "float64"
    with np.errstate(over="ignore", invalid="ignore"):
        narrow = m.astype(np.complex64 if np.iscomplexobj(m) else np.float32)
        same = np.array_equal(narrow.astype(m.dtype), m)
    return "float32" if same else "float64"


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


def is_exact(wording: str) -> bool:
    """True for the two ``exact`` wordings of :func:`exactness`."""
    return wording.startswith("exact")
