"""Verifying a factor file: rebuild its target, recompute the errors, compare with the claims.

A factor file *claims* errors (``rmse``, ``rel_error``, ``max_abs_error``). Verification trusts
none of them: it rebuilds the target from the recorded recipe (the named transform and its
options, or the source matrix file, whose values must still hash to ``source_sha256``), multiplies
the factors out with the numpy reference (the oracle: a verification must not depend on the
compiled kernel being right) and measures again with :func:`bfly_cli.metrics.error_report`.

When is a claim reproduced? The recomputation runs the same arithmetic as ``bfly learn`` did, so
it differs from the recorded value only by rounding. The allowed difference for each measure is

    1e-6 * recorded  +  max(1e-12, 9 * min(recorded, 100 * eps))

with ``eps`` the machine epsilon of the factors' precision. For an exact factorization (a tiny
recorded error, all rounding) that allows up to 10x the recorded value, at least 1e-12; for an
approximate one (say rel_error 0.5) it allows one part in a million, so a tampered twiddle that
moves the error only slightly is still caught. The check is two-sided: factors that are *better*
than their metadata claims also fail, because then the metadata does not describe these factors.
The absolute measures (``rmse``, ``max_abs_error``) are compared in units of the power of two at or
above the target's largest entry, so the rule means the same for a matrix of 1e-200 as of 1.

Every comparison fails on NaN: factors whose output overflows (finite twiddles of 1e200 whose
products are Inf or NaN) fail, whatever the file claims. The other claims a file records that
the steps and the target determine (``n``, ``structure``, ``dtype``, ``params``, ``real_params``,
``dense_real_params``, ``input_precision``, and the verdict ``exactness``, ``exact``,
``noise_floor``) are recomputed too; the document's ``checked`` lists those the file records.
Provenance (``solver``, ``seconds``, ``created``, ``command``, the solvers' logs) cannot be
recomputed and is not checked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .errors import BflyError
from .factors import Factors

MEASURES = ("rel_error", "rmse", "max_abs_error")
RELATIVE_SLACK = 1e-6
ABSOLUTE_FLOOR = 1e-12
ROUNDING_ULPS = 100


def allowed_difference(recorded: float, dtype: str, exponent: int = 0) -> float:
    """How far a recomputed error may lie from the recorded one (module docstring: why).

    ``exponent``: the measure is compared in units of ``2**exponent`` (the target's magnitude, see
    :func:`measure_exponents`), so that the absolute floor means the same for a matrix of 1e-200
    or 1e300 as for one of entries near 1.
    """
    real = np.empty(0, np.dtype(dtype)).real.dtype
    eps = float(np.finfo(real).eps)
    unit = float(np.ldexp(recorded, -exponent))
    allowed = RELATIVE_SLACK * unit + max(ABSOLUTE_FLOOR, 9.0 * min(unit, ROUNDING_ULPS * eps))
    with np.errstate(over="ignore"):
        return float(np.ldexp(allowed, exponent))


def measure_exponents(target: np.ndarray) -> dict[str, int]:
    """The unit of each measure as a power of two: 1 for ``rel_error``; for the absolute measures
    (``rmse``, ``max_abs_error``) the power of two at or above the target's largest entry."""
    from .metrics import magnitude_exponent

    exponent = magnitude_exponent(target)
    return {"rel_error": 0, "rmse": exponent, "max_abs_error": exponent}


def resolve_source(meta: dict[str, Any], factor_path: Path, override: str | Path | None) -> str | None:
    """The matrix file to check against: ``override``, else the recorded path (as given at learn
    time, so relative to where ``bfly learn`` ran), else that path relative to the factor file."""
    if meta.get("source") is None and meta.get("source_sha256") is None:
        return None
    if override is not None:
        candidates = [Path(override)]
    elif meta.get("source") is None:  # bfly_cli.learn(matrix): only the values' hash was recorded
        raise BflyError(f"{str(factor_path)!r} was learned from an in-memory matrix (sha256 "
                        f"{str(meta.get('source_sha256'))[:12]}...); pass --source FILE (.npy/.npz/.h5 holding it)")
    else:
        recorded = Path(str(meta.get("source")))
        candidates = [recorded] + ([factor_path.parent / recorded] if not recorded.is_absolute() else [])
    for candidate in candidates:
        if candidate.is_file():
            return str(candidate)
    raise BflyError(f"{str(factor_path)!r} was learned from matrix file {str(candidates[0])!r}, which is not there; "
                    f"pass --source PATH if it moved")


def rebuild_target(factors: Factors, factor_path: Path, source: str | Path | None = None):
    """The :class:`~bfly_cli.targets.Target` the file was learned from (errors exit 2)."""
    from bfly_cli import transforms

    from .targets import target_from_meta

    meta = factors.meta
    path = resolve_source(meta, factor_path, source)
    if path is None and str(meta.get("transform")) not in transforms.names():
        raise BflyError(f"{str(factor_path)!r} records transform {meta.get('transform')!r} and no source matrix file, "
                        f"so there is no target to rebuild (hand-built, trained or derived factors record none; "
                        f"bfly_cli.learn() records its transform or matrix)")
    try:
        return target_from_meta(meta, path)
    except BflyError as exc:
        raise BflyError(f"{str(factor_path)!r}: cannot rebuild its target: {exc}") from None


def compare(recorded: dict[str, Any], recomputed: dict[str, float], dtype: str, tol: float | None,
            exponents: dict[str, int] | None = None) -> tuple[dict[str, float], list[str]]:
    """Allowed differences per measure, and the reasons (if any) the file fails.

    Every test is written so that NaN fails it (``not diff <= allowed``): a comparison with NaN is
    false, and factors whose output overflows must not pass because of that.
    """
    allowed, reasons = {}, []
    for key in MEASURES:
        claim, value = recorded.get(key), recomputed[key]
        if not _finite_number(claim):
            reasons.append(f"{key} is not recorded as a finite number ({claim!r})")
            continue
        if not np.isfinite(value):
            reasons.append(f"{key} recomputed is {value} (the factors' output is not finite)")
            continue
        allowed[key] = allowed_difference(float(claim), dtype, (exponents or {}).get(key, 0))
        diff = value - float(claim)
        if not abs(diff) <= allowed[key]:
            side = "worse" if diff > 0 else "better"
            reasons.append(f"{key} recomputed {value:.6g} is {side} than the recorded {float(claim):.6g} "
                           f"(allowed difference {allowed[key]:.2g})")
    if tol is not None and not recomputed["rel_error"] <= tol:
        reasons.append(f"rel_error {recomputed['rel_error']:.3g} is above --tol {tol:g}")
    return allowed, reasons


def _finite_number(value: Any) -> bool:
    """A real number (not a bool) that is finite."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)) \
        and bool(np.isfinite(value))


def recomputed_claims(factors: Factors, target: np.ndarray) -> dict[str, Any]:
    """The metadata facts the steps and the target determine, as ``bfly learn`` computes them."""
    from .factors import dense_real_params
    from .metrics import input_precision

    return {"n": factors.n, "structure": factors.structure, "dtype": str(factors.dtype),
            "params": factors.n_params(), "real_params": factors.n_real_params(),
            "dense_real_params": dense_real_params(target), "input_precision": input_precision(target)}


def check_claims(meta: dict[str, Any], factors: Factors, target: np.ndarray, recomputed: dict[str, float],
                 allowed: dict[str, float]) -> tuple[list[str], list[str]]:
    """The recorded claims beyond the measures: which were checked (those the file records), and
    a one-line reason naming the claim for each that the factors and target contradict."""
    checked, reasons = [], []
    for key, value in recomputed_claims(factors, target).items():
        if meta.get(key) is None:
            continue
        checked.append(key)
        if not _same_claim(meta[key], value):
            reasons.append(f"{key} is recorded as {meta[key]!r}, but the factors and target give {value!r}")
    verdict_checked, verdict_reasons = _check_verdict(meta, factors, target, recomputed, allowed)
    return checked + verdict_checked, reasons + verdict_reasons


def _check_verdict(meta: dict[str, Any], factors: Factors, target: np.ndarray, recomputed: dict[str, float],
                   allowed: dict[str, float]) -> tuple[list[str], list[str]]:
    """``exactness``, ``exact`` and ``noise_floor`` against the wording :func:`metrics.exactness`
    gives the recomputed rel_error (or the recorded one, when it reproduces: a result right at a
    threshold must not fail on rounding)."""
    from .metrics import exactness, input_precision, is_exact, working_precision

    precision, working = input_precision(target), working_precision(str(factors.dtype))
    errors = [recomputed["rel_error"]]
    claim = meta.get("rel_error")
    if _finite_number(claim) and "rel_error" in allowed and abs(float(claim) - errors[0]) <= allowed["rel_error"]:
        errors.append(float(claim))
    wordings = {exactness(error, precision, working) for error in errors}
    expected = {"exactness": wordings, "exact": {is_exact(w) for w in wordings}}
    checked, reasons = [], []
    for key, values in expected.items():
        if meta.get(key) is None:
            continue
        checked.append(key)
        if not any(_same_claim(meta[key], value) for value in values):
            reasons.append(f"{key} is recorded as {meta[key]!r}, but the recomputed rel_error "
                           f"{errors[0]:.3g} makes it {' or '.join(map(repr, sorted(values)))}")
    if meta.get("noise_floor") is not None:
        checked.append("noise_floor")
        reason = _noise_floor_reason(meta["noise_floor"], wordings, errors[0], allowed.get("rel_error"))
        reasons += [reason] if reason else []
    return checked, reasons


def _noise_floor_reason(claim: Any, wordings: set[str], rel_error: float, allowed: float | None) -> str | None:
    """The noise floor is the rel_error of a structured (not approximate) result; None when it holds."""
    if wordings == {"approximate"}:
        return f"noise_floor {claim!r} is recorded, but the recomputed rel_error {rel_error:.3g} makes the result approximate"
    if not _finite_number(claim) or allowed is None or not abs(float(claim) - rel_error) <= allowed:
        return f"noise_floor is recorded as {claim!r}, but the recomputed rel_error is {rel_error:.6g}"
    return None


def _same_claim(claim: Any, value: Any) -> bool:
    """``claim == value`` with the type it should have: a bool for a bool, an integer (not a bool)
    for an integer, a string for a string (``"16"`` does not claim ``16``)."""
    if isinstance(value, bool):
        return isinstance(claim, (bool, np.bool_)) and bool(claim) == value
    if isinstance(value, int):
        return isinstance(claim, (int, np.integer)) and not isinstance(claim, (bool, np.bool_)) and int(claim) == value
    return isinstance(claim, str) and claim == value


def verify(path: str | Path, tol: float | None = None, source: str | Path | None = None) -> dict[str, Any]:
    """Verify the factor file at ``path``; return the ``bfly verify --json`` document.

    Unreadable files, targets that cannot be rebuilt and changed source matrices raise
    :class:`BflyError` (exit 2): there is nothing to compare. A mismatch is reported with
    ``passed: false`` and the reasons; the caller decides to exit 1. ``checked`` lists every
    recorded claim that was recomputed (the measures first).
    """
    from .h5format import load
    from .metrics import error_report

    if tol is not None and not tol >= 0:
        raise BflyError(f"--tol {tol}: give a non-negative tolerance")
    path = Path(path)
    factors = load(path)
    target = rebuild_target(factors, path, source)
    with np.errstate(all="ignore"):  # overflowing factors are reported below, not warned about
        dense = factors.to_dense()
        recomputed = error_report(dense, target.matrix)
    recorded = {key: factors.meta.get(key) for key in MEASURES}
    allowed, reasons = compare(recorded, recomputed, str(factors.dtype), tol, measure_exponents(target.matrix))
    checked, claim_reasons = check_claims(factors.meta, factors, target.matrix, recomputed, allowed)
    reasons += claim_reasons
    if not np.all(np.isfinite(dense)):  # one reason: every other failure follows from it
        reasons = ["the factors' output holds NaN or Inf (their products overflow): they describe no matrix"]
    return {
        "file": str(path), "transform": factors.meta.get("transform"),
        "transform_options": factors.meta.get("transform_options") or {},
        "source": target.source, "source_sha256": target.sha256,
        "n": factors.n, "structure": factors.structure, "dtype": str(factors.dtype),
        "recorded": recorded, "recomputed": recomputed, "allowed_difference": allowed, "tol": tol,
        "checked": [*MEASURES, *checked],
        "passed": not reasons, "reasons": reasons,
    }
