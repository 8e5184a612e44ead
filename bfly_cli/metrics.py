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
