"""The library entry point: factor a matrix, measure it, and return factors with full metadata.

``learn(matrix)`` is what the ``bfly learn`` command calls after resolving its target; tests and
users call it directly. It times the solver alone (not target construction or error measurement)
and always reports the three error measures of :mod:`bfly_cli.metrics`.
"""

from __future__ import annotations

import datetime as _dt
import re
import sys
import time
from typing import Any, Callable

import numpy as np

from ._version import __version__
from .errors import BflyError, CheckFailed
from .factors import Factors, Step, dense_real_params
from .metrics import error_report, exactness, input_precision, is_exact
from .solvers.registry import SOLVER_NAMES, solver as registered_solver

DTYPES = ("float64", "float32")


def learn(
    matrix: np.ndarray,
    *,
    solver: str = "auto",
    dtype: str = "float64",
    tol: float | None = None,
    meta: dict[str, Any] | None = None,
    solver_options: dict[str, Any] | None = None,
) -> Factors:
    """Factor ``matrix`` and return :class:`Factors` whose ``meta`` holds errors and provenance.

    Raises :class:`CheckFailed` when ``tol`` is given and the relative error exceeds it (the
    factors are attached to the exception as ``.factors`` so a caller can still inspect them).
    """
    if solver not in SOLVER_NAMES:
        raise BflyError(f"unknown solver {solver!r}; choose one of: {', '.join(SOLVER_NAMES)}")
    if dtype not in DTYPES:
        raise BflyError(f"unknown dtype {dtype!r}; choose float64 or float32")
    matrix = np.asarray(matrix)
    work = matrix.astype(_work_dtype(matrix, dtype))
    start = time.perf_counter()
    steps, extra = _run_solver(solver, work, solver_options or {})
    seconds = time.perf_counter() - start
    factors = Factors(matrix.shape[0], steps)
    errors = error_report(factors.to_dense_fast(), matrix)  # kernel when built: several x faster at large N
    dense = {"dense_real_params": dense_real_params(matrix)}
    quality = _quality(errors["rel_error"], matrix, factors)
    factors.meta = _metadata(factors, solver, seconds, errors, meta or {}, {**dense, **quality, **extra})
    if tol is not None and errors["rel_error"] > tol:
        failure = CheckFailed(f"rel_error {errors['rel_error']:.3g} is above --tol {tol:g}")
        failure.factors = factors
        raise failure
    return factors


def _run_solver(solver: str, work: np.ndarray, options: dict[str, Any]) -> tuple[list[Step], dict[str, Any]]:
    """Call the solver with its options; a route that cannot apply becomes a one-line BflyError."""
    from .solvers import RouteUnavailable

    try:
        return registered_solver(solver).solve(work, **options)
    except RouteUnavailable as exc:
        raise BflyError(f"solver {solver!r} cannot factor this matrix: {exc}") from None
    except TypeError as exc:
        if options and "unexpected keyword" in str(exc):
            bad = re.search(r"keyword argument '([^']+)'", str(exc))
            named = f"no option {bad.group(1)!r}" if bad else f"none of the options {sorted(options)}"
            raise BflyError(f"solver {solver!r} takes {named}") from None
        raise


def _work_dtype(matrix: np.ndarray, dtype: str) -> np.dtype:
    complex_ = np.iscomplexobj(matrix)
    if dtype == "float32":
        return np.dtype(np.complex64 if complex_ else np.float32)
    return np.dtype(np.complex128 if complex_ else np.float64)


def _quality(rel_error: float, matrix: np.ndarray, factors: Factors) -> dict[str, Any]:
    """How exact the result is, judged against the *input's* precision (see :func:`exactness`).

    ``noise_floor`` is the relative distance from the matrix to the structure found, recorded
    when a structure was found (exact or near-exact): an upper bound of the noise the matrix
    carries if the structure is the right one. An approximation has no noise floor to report.
    """
    dtype = str(factors.dtype)
    working = "float32" if dtype in ("float32", "complex64") else "float64"
    precision = input_precision(matrix)
    wording = exactness(rel_error, precision, working)
    noise = float(rel_error) if wording != "approximate" else None
    return {"exact": is_exact(wording), "exactness": wording, "input_precision": precision, "noise_floor": noise}


def _metadata(factors: Factors, solver: str, seconds: float, errors: dict, given: dict, extra: dict) -> dict[str, Any]:
    dtype = str(factors.dtype)
    meta = {
        "transform": "matrix",
        "seed": 0,
        "command": " ".join(["bfly", *sys.argv[1:]]) if sys.argv and sys.argv[0].endswith("bfly") else "bfly_cli.factorize()",
        **given,
        "n": factors.n,
        "dtype": dtype,
        "structure": factors.structure,
        "solver": solver,
        **errors,
        "params": factors.n_params(),
        "real_params": factors.n_real_params(),
        "seconds": seconds,
        "bfly_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **extra,
    }
    return meta
