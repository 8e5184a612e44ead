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


def allowed_difference(recorded: float, dtype: str) -> float:
    """How far a recomputed error may lie from the recorded one (module docstring: why)."""
    real = np.empty(0, np.dtype(dtype)).real.dtype
    eps = float(np.finfo(real).eps)
    return RELATIVE_SLACK * recorded + max(ABSOLUTE_FLOOR, 9.0 * min(recorded, ROUNDING_ULPS * eps))


def resolve_source(meta: dict[str, Any], factor_path: Path, override: str | Path | None) -> str | None:
    """The matrix file to check against: ``override``, else the recorded path (as given at learn
    time, so relative to where ``bfly learn`` ran), else that path relative to the factor file."""
    if meta.get("source") is None and meta.get("source_sha256") is None:
        return None
    if override is not None:
        candidates = [Path(override)]
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
    import transforms

    from .targets import target_from_meta

    meta = factors.meta
    path = resolve_source(meta, factor_path, source)
    if path is None and str(meta.get("transform")) not in transforms.names():
        raise BflyError(f"{str(factor_path)!r} records transform {meta.get('transform')!r} and no source matrix file, "
                        f"so there is no target to rebuild (files from bfly_cli.factorize() need meta with transform or source)")
    try:
        return target_from_meta(meta, path)
    except BflyError as exc:
        raise BflyError(f"{str(factor_path)!r}: cannot rebuild its target: {exc}") from None


def compare(recorded: dict[str, Any], recomputed: dict[str, float], dtype: str, tol: float | None) -> tuple[dict[str, float], list[str]]:
    """Allowed differences per measure, and the reasons (if any) the file fails."""
    allowed, reasons = {}, []
    for key in MEASURES:
        claim = recorded.get(key)
        if not isinstance(claim, (int, float)) or isinstance(claim, bool) or not np.isfinite(claim):
            reasons.append(f"{key} is not recorded as a finite number ({claim!r})")
            continue
        allowed[key] = allowed_difference(float(claim), dtype)
        diff = recomputed[key] - float(claim)
        if abs(diff) > allowed[key]:
            side = "worse" if diff > 0 else "better"
            reasons.append(f"{key} recomputed {recomputed[key]:.6g} is {side} than the recorded {float(claim):.6g} "
                           f"(allowed difference {allowed[key]:.2g})")
    if tol is not None and recomputed["rel_error"] > tol:
        reasons.append(f"rel_error {recomputed['rel_error']:.3g} is above --tol {tol:g}")
    return allowed, reasons


def verify(path: str | Path, tol: float | None = None, source: str | Path | None = None) -> dict[str, Any]:
    """Verify the factor file at ``path``; return the ``bfly verify --json`` document.

    Unreadable files, targets that cannot be rebuilt and changed source matrices raise
    :class:`BflyError` (exit 2): there is nothing to compare. A mismatch is reported with
    ``passed: false`` and the reasons; the caller decides to exit 1.
    """
    from .h5format import load
    from .metrics import error_report

    if tol is not None and not tol >= 0:
        raise BflyError(f"--tol {tol}: give a non-negative tolerance")
    path = Path(path)
    factors = load(path)
    target = rebuild_target(factors, path, source)
    recomputed = error_report(factors.to_dense(), target.matrix)
    recorded = {key: factors.meta.get(key) for key in MEASURES}
    allowed, reasons = compare(recorded, recomputed, str(factors.dtype), tol)
    return {
        "file": str(path), "transform": factors.meta.get("transform"),
        "transform_options": factors.meta.get("transform_options") or {},
        "source": target.source, "source_sha256": target.sha256,
        "n": factors.n, "structure": factors.structure, "dtype": str(factors.dtype),
        "recorded": recorded, "recomputed": recomputed, "allowed_difference": allowed, "tol": tol,
        "passed": not reasons, "reasons": reasons,
    }
