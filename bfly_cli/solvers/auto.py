"""``--solver auto``: the most accurate structure the matrix admits, found from the matrix alone.

The routes of :data:`~bfly_cli.solvers.registry.ROUTES` are tried in order of cost (B.P, real
rank-2, two butterflies; each discovers its permutations from the matrix). A matrix reaches bfly
by many roads (another library's rounding, float32 storage, measurement noise), so a route's
result is judged by :func:`~bfly_cli.metrics.exactness`, not by a float64-only gate:

* ``exact`` (float64 ``rel_error <= 1e-12``) or ``exact to input precision (float32)`` (a
  float32-representable input within 10 unit round-offs), or ``near-exact`` (``<= 1e-3``: the
  structure plus noise): the search stops and that result is returned;
* otherwise the approximation route (``budget`` butterfly blocks) runs, and the most accurate
  result wins: a structured fit beats the approximation when its error is 10x lower, else the
  approximation (whose parameter count the budget bounds) is kept.

The wording decides what the summary says, never which result a user gets. Exact structures are
not capped unless ``strict_budget`` is set (CLI ``--strict-budget``); parameter counts compare in
*real* numbers (``Factors.n_real_params``). Every route's outcome goes into the metadata
(``auto_tried``), so the file says what was tried and why the winner won.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import BflyError
from ..factors import Factors, Step, dense_real_params
from ..metrics import exactness, input_precision, is_exact
from . import RouteUnavailable
from . import numerics, registry
from .registry import Route

MAX_BUDGET = 8
_PROBES = 16
_PROBE_SEED = 20240612
_BETTER = 10.0  # a structured fit must be this much more accurate than the approximation to win


def solve_auto(matrix: np.ndarray, budget: int = 1, strict_budget: bool = False) -> tuple[list[Step], dict[str, Any]]:
    """Steps of the best route and the ``auto_*`` metadata (see the module docstring).

    ``budget`` caps the approximation at ``budget`` untied complex B.P's. Exact structures are not
    capped by default (exactness first), so at N <= 16 a real matrix with no structure at all can
    come out as an exact ``QP`` that stores more numbers than the dense matrix (every real 8 x 8
    matrix has rank-2 blocks); the reason says so. ``strict_budget`` applies the cap to exact
    structures too: one over it is recorded (status ``"..., over budget"``) and skipped.
    """
    check_budget(budget)
    precision, working = input_precision(matrix), _working(matrix)
    cap = budget_real_params(matrix.shape[0], budget)
    tried: list[dict[str, Any]] = []
    results: list[_Outcome] = []
    for item in registry.ROUTES:
        if not item.exact_route and any(r.structured for r in results):
            break  # a structured fit within noise: the approximation cannot be the better answer
        outcome = _attempt(item, matrix, budget, precision, working)
        tried.append(outcome.record)
        if outcome.steps is None:
            continue
        if strict_budget and outcome.record["real_params"] > cap:
            outcome.record["status"] += ", over budget"
            continue
        results.append(outcome)
        if outcome.structured:
            reason = f"{outcome.record['status']} route: rel_error {outcome.rel_error:.2e}" + _size_note(outcome.record, matrix)
            return outcome.steps, _meta(item.name, reason, tried, outcome.extra)
    if not results:
        within = f" within the budget ({cap:,} real numbers)" if strict_budget else ""
        raise BflyError(f"no route could factor this matrix{within}: "
                        + "; ".join(f"{t['route']}: {t.get('reason', t['status'])}" for t in tried))
    best = _pick(results)
    within = " within the budget" if strict_budget else ""
    if is_exact(exactness(best.rel_error, precision, working)):  # e.g. the polish reached Re(B P) of a small DCT
        return best.steps, _meta(best.name, f"no exact structure route applied{within}; the {best.name} route reached "
                                            f"an exact fit: rel_error {best.rel_error:.2e}", tried, best.extra)
    return best.steps, _meta(best.name, f"no exact structure found{within}; best result ({best.name}) rel_error "
                                        f"{best.rel_error:.2e}", tried, best.extra)


@dataclass
class _Outcome:
    """One route's result: its steps (None when unavailable), metadata and ``auto_tried`` record."""

    name: str
    steps: list[Step] | None
    extra: dict[str, Any]
    record: dict[str, Any]
    rel_error: float = math.inf
    structured: bool = False  # a closed-form route within noise of its structure: stop here


def _working(matrix: np.ndarray) -> str:
    """The real dtype the solvers compute in (float32 for ``--dtype float32``)."""
    return str(np.real(np.empty(0, matrix.dtype)).dtype)


def _pick(results: list[_Outcome]) -> _Outcome:
    """The approximation unless a structured route is 10x more accurate (its size is then worth it)."""
    approx = [r for r in results if r.name == "approximate"]
    best = min(results, key=lambda r: r.rel_error)
    if approx and best is not approx[0] and best.rel_error * _BETTER > approx[0].rel_error:
        return approx[0]
    return best


def budget_real_params(n: int, budget: int) -> int:
    """Real numbers in ``budget`` untied complex B.P's: ``budget * 2 N log2 N`` complex twiddles."""
    return budget * 4 * n * max(n.bit_length() - 1, 1)


def _size_note(record: dict[str, Any], matrix: np.ndarray) -> str:
    """A warning appended to the reason when an exact result is no smaller than the matrix itself."""
    dense = dense_real_params(matrix)
    if record["real_params"] < dense:
        return ""
    return (f"; note: exact but not a compression ({record['real_params']:,} real numbers vs {dense:,} dense); "
            "--strict-budget caps it")


def check_budget(budget: Any) -> int:
    """``budget`` as an int in 1..MAX_BUDGET, else a one-line :class:`BflyError` (exit 2)."""
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or not 1 <= budget <= MAX_BUDGET:
        raise BflyError(f"--budget must be an integer from 1 to {MAX_BUDGET} (butterfly blocks), got {budget!r}")
    return int(budget)


def _attempt(item: Route, matrix: np.ndarray, budget: int, precision: str, working: str) -> _Outcome:
    """Run one route and measure it; a route that does not apply is recorded with its reason."""
    start = time.perf_counter()
    short = item.memory.shortfall(matrix)
    if short:  # refused before the work: the system would kill the process part-way instead
        return _Outcome(item.name, None, {}, {"route": item.name, "status": "unavailable", "reason": f"{short} (a smaller N fits)",
                                              "seconds": 0.0})
    try:
        steps, extra = item.solve(matrix, budget) if not item.exact_route else item.solve(matrix)
    except RouteUnavailable as exc:
        # The time to reject is recorded too: a slow rejection is a cost every later route pays.
        record = {"route": item.name, "status": "unavailable", "reason": str(exc), "seconds": round(time.perf_counter() - start, 4)}
        return _Outcome(item.name, None, {}, record)
    seconds = time.perf_counter() - start
    factors = Factors(matrix.shape[0], steps)
    err = probe_error(factors, matrix)
    wording = exactness(err, precision, working)
    status = wording if wording != "approximate" else "inexact"
    record = {"route": item.name, "status": status, "rel_error": err, "params": factors.n_params(),
              "real_params": factors.n_real_params(), "structure": factors.structure, "seconds": round(seconds, 4)}
    return _Outcome(item.name, steps, extra, record, err, item.exact_route and wording != "approximate")


def probe_error(factors: Factors, matrix: np.ndarray, probes: int = _PROBES) -> float:
    """``||(M - T) X||_F / ||T X||_F`` for a fixed Gaussian ``X`` of ``probes`` columns.

    An unbiased estimate of the relative Frobenius error that costs ``probes`` products instead
    of a dense N x N reconstruction (which for a ``rank2`` step costs more than the solve). Its
    spread (a small factor) never changes a verdict, whose thresholds are decades apart; ``learn``
    still reports the dense error of the winner.
    """
    return numerics.probe_error(factors.apply, matrix, probes, _PROBE_SEED)


def _meta(route: str, reason: str, tried: list[dict[str, Any]], extra: dict[str, Any]) -> dict[str, Any]:
    return {**extra, "auto_route": route, "auto_reason": reason, "auto_tried": tried}
