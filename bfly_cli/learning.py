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
from .metrics import (error_report_blocks, exactness, input_precision, is_exact, magnitude_exponent, row_blocks,
                      scale_by_power_of_two, working_precision)
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
    if tol is not None and not tol >= 0:  # NaN-safe: a NaN tolerance must not disable the check
        raise BflyError(f"tol {tol}: give a non-negative tolerance")
    matrix = np.asarray(matrix)
    exponent = check_values(matrix)
    work = scaled_copy(matrix, -exponent, _work_dtype(matrix, dtype))
    start = time.perf_counter()
    steps, extra = _run_solver(solver, work, solver_options or {})
    seconds = time.perf_counter() - start
    del work  # the errors are measured against ``matrix``: one N x N copy less at their peak
    factors = Factors(matrix.shape[0], fold_scale(steps, exponent, dtype))
    errors = error_report_blocks(factors.dense_blocks(), matrix)  # kernel when built; never a dense copy
    dense = {"dense_real_params": dense_real_params(matrix)}
    quality = _quality(errors["rel_error"], matrix, factors)
    factors.meta = _metadata(factors, solver, seconds, errors, meta or {}, {**dense, **quality, **extra})
    if tol is not None and not errors["rel_error"] <= tol:  # NaN-safe: a NaN error fails
        failure = CheckFailed(f"rel_error {errors['rel_error']:.3g} is above --tol {tol:g}")
        failure.factors = factors
        raise failure
    return factors


def check_values(matrix: np.ndarray) -> int:
    """Refuse what no factorization can describe; return the exponent of its magnitude.

    The solvers see the matrix divided by ``2**exponent`` (largest entry in [0.5, 1), an exact
    rescaling), so neither entries of 1e-200 (whose squares underflow: such a matrix used to be
    "learned" as all-zero factors, rel_error 0) nor of 1e300 (whose squares overflow the SVDs)
    reach them; :func:`fold_scale` puts the scale back into the factors.
    """
    if matrix.ndim != 2 or matrix.dtype.kind not in "biufc":
        raise BflyError(f"expected a 2-D array of numbers, got shape {matrix.shape} and dtype {matrix.dtype}")
    if not np.all(np.isfinite(matrix)):
        raise BflyError("the matrix holds NaN or Inf entries; replace them with finite values")
    if not np.any(matrix):
        raise BflyError("the matrix is all zeros: there is nothing to factor; check the input")
    return magnitude_exponent(matrix)


def scaled_copy(matrix: np.ndarray, exponent: int, dtype: np.dtype) -> np.ndarray:
    """``matrix * 2**exponent`` in ``dtype``, scaled before rounding (a float64 matrix of 1e-200
    held in float32 must be scaled first) and filled in row blocks, so the only N x N arrays alive
    are the input and the result (a scaled temporary beside them was 4 GiB at N = 16384)."""
    out = np.empty(matrix.shape, dtype)
    for rows in row_blocks(matrix):
        out[rows] = scale_by_power_of_two(matrix[rows], exponent)
    return out


def fold_scale(steps: list[Step], exponent: int, dtype: str = "float64") -> list[Step]:
    """Steps whose product is ``2**exponent`` times that of ``steps``, without rounding.

    The power of two is spread as evenly as possible over every scalable unit (each stage of a
    butterfly or rank2 step, each diagonal), so each unit's data stays far from the ends of the
    float range (an exponent of -1070 on one stage of twiddles would make them subnormal and round
    them). A scale the data cannot hold (a 1e-200 matrix in float32 factors) is refused.
    """
    if exponent == 0:
        return steps
    units = [(k, level) for k, step in enumerate(steps) for level in _scalable_units(step)]
    if not units:
        steps, units = steps + [Step("diagonal", np.ones(len(steps[0].data), np.dtype(dtype)))], [(len(steps), None)]
    share, extra = divmod(exponent, len(units))
    out = [Step(step.kind, None if step.data is None else step.data.copy()) for step in steps]
    for i, (k, level) in enumerate(units):
        part = share + (1 if i < extra else 0)
        where = slice(None) if level is None else level
        out[k].data[where] = _scaled_unit(out[k].data[where], part, exponent)
    return out


def _scaled_unit(original: np.ndarray, part: int, exponent: int) -> np.ndarray:
    """``original * 2**part``, refused when that overflows or loses more than rounding: a power of
    two only rounds entries that turn subnormal, which is harmless for a few tiny entries (a
    cancellation's leftover) but not for the whole unit (the factors would no longer hold the
    matrix)."""
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        scaled = scale_by_power_of_two(original, part)
        lost = np.max(np.abs(scale_by_power_of_two(scaled, -part) - original)) if original.size else 0.0
        peak = np.max(np.abs(original)) if original.size else 0.0
    eps = np.finfo(original.dtype).eps
    if not np.all(np.isfinite(scaled)) or not lost <= eps * peak:
        raise BflyError(f"the matrix's magnitude (about 2^{exponent}) cannot be held by {original.dtype} factors; "
                        f"use --dtype float64 or rescale the matrix")
    return scaled


def _scalable_units(step: Step) -> list[int | None]:
    """Parts of a step that scale the product linearly: stages of a butterfly or rank2 step
    (their index), a whole diagonal (None); permutations and ``real`` have none."""
    if step.kind in ("butterfly", "rank2"):
        return list(range(step.data.shape[0]))
    return [None] if step.kind == "diagonal" else []


def _run_solver(solver: str, work: np.ndarray, options: dict[str, Any]) -> tuple[list[Step], dict[str, Any]]:
    """Call the solver with its options; a route that cannot apply becomes a one-line BflyError."""
    from .solvers import RouteUnavailable

    chosen = registered_solver(solver)
    short = chosen.memory and chosen.memory.shortfall(work)
    if short:
        raise BflyError(f"solver {solver!r} {short}; use a smaller N")
    try:
        return chosen.solve(work, **options)
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
    working = working_precision(str(factors.dtype))
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
