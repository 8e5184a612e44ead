"""``--solver auto``: the cheapest exact structure the matrix admits, found from the matrix alone.

Routes are tried in order of cost and the first *exact* one (float64 ``rel_error <= 1e-12``) wins:

1. ``bp``          B.P, real or complex (closed form, permutation discovered).
2. ``real_rank2``  real matrices only: B.P with rank-2 blocks (``[permutation, rank2]``), for
                   DCT-II/DST-II-like transforms that are real parts of complex butterflies.
3. ``two_butterfly`` circulant-like matrices (``solve_two_butterfly``, another module).
4. ``approximate`` the best approximation with ``budget`` butterfly blocks (``solve_approximate``).

Nothing exact: the approximation is returned (it never has more parameters than ``budget``
untied complex B.P, i.e. ``budget * 4 N log2 N`` real numbers). Exact structures are not capped
unless ``strict_budget`` is set (CLI ``--strict-budget``); parameter counts compare in *real*
numbers (``Factors.n_real_params``), the only unit in which a real rank-2 chain, a complex
butterfly and the dense matrix are comparable. Routes 3 and 4 are imported lazily; a route whose
module is missing or that raises :class:`RouteUnavailable` is recorded as skipped with its reason.
Every route's outcome goes into the metadata (``auto_tried``), so the file says what was tried and
why the winner won.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from ..errors import BflyError
from ..factors import Factors, Step, dense_real_params
from ..metrics import exact_threshold
from . import RouteUnavailable
from .closed_form.bp_route import _exact_for, solve_bp

MAX_BUDGET = 8
_PROBES = 16
_PROBE_SEED = 20240612
Route = Callable[[np.ndarray], tuple[list[Step], dict[str, Any]]]


def solve_auto(matrix: np.ndarray, budget: int = 1, strict_budget: bool = False) -> tuple[list[Step], dict[str, Any]]:
    """Steps of the first exact route (else the approximation) and the ``auto_*`` metadata.

    ``budget`` caps the approximation at ``budget`` untied complex B.P's. Exact structures are not
    capped by default (exactness first), so at N <= 16 a real matrix with no structure at all can
    come out as an exact ``QP`` that stores more numbers than the dense matrix (every real 8 x 8
    matrix has rank-2 blocks); the reason says so. ``strict_budget`` applies the cap to exact
    structures too: one over it is recorded (status ``"exact, over budget"``) and skipped.
    """
    check_budget(budget)
    exact = _exact_for(matrix)
    cap = budget_real_params(matrix.shape[0], budget)
    tried: list[dict[str, Any]] = []
    results: list[tuple[str, list[Step], dict[str, Any], float]] = []
    for name, route in routes(budget):
        outcome = _attempt(name, route, matrix, exact)
        record = outcome["record"]
        tried.append(record)
        if outcome["steps"] is None:
            continue
        if strict_budget and record["real_params"] > cap:
            record["status"] += ", over budget"
            continue
        results.append((name, outcome["steps"], outcome["extra"], record["rel_error"]))
        if record["rel_error"] <= exact and name != "approximate":
            reason = f"first exact route: rel_error {record['rel_error']:.2e} <= {exact:g}" + _size_note(record, matrix)
            return outcome["steps"], _meta(name, reason, tried, outcome["extra"])
    if not results:
        within = f" within the budget ({cap:,} real numbers)" if strict_budget else ""
        raise BflyError(f"no route could factor this matrix{within}: "
                        + "; ".join(f"{t['route']}: {t.get('reason', t['status'])}" for t in tried))
    name, steps, extra, err = _pick_inexact(results)
    within = " within the budget" if strict_budget else ""
    if err <= exact:  # the polish converged to an exact fit, e.g. Re(B P) for a small DCT
        return steps, _meta(name, f"no exact structure route applied{within}; the approximation reached an exact "
                                  f"fit: rel_error {err:.2e} <= {exact:g}", tried, extra)
    return steps, _meta(name, f"no exact structure found{within}; best approximation rel_error {err:.2e}", tried, extra)


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


def routes(budget: int) -> list[tuple[str, Route]]:
    """The routes in the order auto tries them (names as recorded in ``auto_route``)."""
    return [("bp", solve_bp), ("real_rank2", _real_rank2), ("two_butterfly", _two_butterfly),
            ("approximate", lambda m: _approximate(m, budget))]


def _real_rank2(matrix: np.ndarray) -> tuple[list[Step], dict[str, Any]]:
    from .closed_form.rank2_route import solve_real_rank2

    # strict: a matrix with no rank-2 order is rejected at its first failed class search.
    return solve_real_rank2(matrix, strict=True)


def _two_butterfly(matrix: np.ndarray) -> tuple[list[Step], dict[str, Any]]:
    try:
        from .closed_form.two_butterfly import solve_two_butterfly
    except ImportError as exc:
        raise RouteUnavailable(f"two-butterfly route not installed ({exc})") from None
    return solve_two_butterfly(matrix)


def _approximate(matrix: np.ndarray, budget: int) -> tuple[list[Step], dict[str, Any]]:
    try:
        from .approximate.route import solve_approximate
    except ImportError as exc:
        raise RouteUnavailable(f"approximation route not installed ({exc})") from None
    return solve_approximate(matrix, budget)


def _attempt(name: str, route: Route, matrix: np.ndarray, exact: float) -> dict[str, Any]:
    """Run one route; its steps (or None), extra metadata and the record for ``auto_tried``."""
    start = time.perf_counter()
    try:
        steps, extra = route(matrix)
    except RouteUnavailable as exc:
        # The time to reject is recorded too: a slow rejection is a cost every later route pays.
        record = {"route": name, "status": "unavailable", "reason": str(exc), "seconds": round(time.perf_counter() - start, 4)}
        return {"steps": None, "extra": {}, "record": record}
    seconds = time.perf_counter() - start
    factors = Factors(matrix.shape[0], steps)
    err = probe_error(factors, matrix)
    record = {"route": name, "status": "exact" if err <= exact else "inexact", "rel_error": err,
              "params": factors.n_params(), "real_params": factors.n_real_params(), "structure": factors.structure,
              "seconds": round(seconds, 4)}
    return {"steps": steps, "extra": extra, "record": record}


def probe_error(factors: Factors, matrix: np.ndarray, probes: int = _PROBES) -> float:
    """``||(M - T) X||_F / ||T X||_F`` for a fixed Gaussian ``X`` of ``probes`` columns.

    An unbiased estimate of the relative Frobenius error that costs ``probes`` products instead
    of a dense N x N reconstruction (which for a ``rank2`` step costs more than the solve).
    Exact factors give ~1e-15, anything else is orders of magnitude above the 1e-12 line, so
    the estimate's spread (a small factor) never changes the verdict; ``learn`` still reports
    the dense error of the winner.
    """
    x = np.random.default_rng(_PROBE_SEED).standard_normal((probes, matrix.shape[0]))
    target = x @ matrix.T
    norm = float(np.linalg.norm(target))
    diff = float(np.linalg.norm(factors.apply(x) - target))
    return diff / norm if norm > 0 else diff


def _pick_inexact(results: list[tuple[str, list[Step], dict[str, Any], float]]):
    """The approximation route when it ran (its parameter count is bounded by the budget), else
    the most accurate of the others."""
    for item in results:
        if item[0] == "approximate":
            return item
    return min(results, key=lambda item: item[3])


def _meta(route: str, reason: str, tried: list[dict[str, Any]], extra: dict[str, Any]) -> dict[str, Any]:
    return {**extra, "auto_route": route, "auto_reason": reason, "auto_tried": tried}
