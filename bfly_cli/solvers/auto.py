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

MAX_BUDGET = 8
_PROBES = 16
_EXACT_SWEEPS = 3
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


def solve_bp(matrix: np.ndarray) -> tuple[list[Step], dict[str, Any]]:
    """B.P: discovered permutation, closed-form twiddles (the ``hierarchical`` solver).

    The order comes from :func:`_exact_bp_order`, which rejects (``RouteUnavailable``) a matrix
    at the first level where no exact rank-one split exists, so the full solve (whose rank-one
    fits iterate to their cap on blocks that are not rank one) is only paid by real B.P
    candidates. Only when a level is ambiguous (more than half of the columns parallel) does the
    general discovery run, guarded by the per-level certificate.
    """
    from .hierarchical import factor_butterfly
    from .permutation import discover_permutation

    perm = _exact_bp_order(matrix)
    if perm is None:
        perm = discover_permutation(matrix)
        _certify_rank1(matrix[:, perm])
    # The order is certified rank one at every level, so each fit converges in one sweep; the
    # small cap only bounds the cost if rounding keeps a block's direction moving.
    twiddle = factor_butterfly(matrix[:, perm], max_iter=_EXACT_SWEEPS)
    return [Step("permutation", perm), Step("butterfly", twiddle)], {}


def _exact_bp_order(matrix: np.ndarray) -> np.ndarray | None:
    """The B.P column order when every level splits cleanly; None when a level is ambiguous.

    In ``B P`` the last stage mixes rows ``b`` and ``b + N/2`` and the rest is block diagonal,
    so at every pair ``b`` the 2-vectors ``(T[b, j], T[b + N/2, j])`` of one half of the columns
    are parallel to one direction and those of the other half to another. Per level: the half
    parallel to the strongest column (:func:`_parallel_to_strongest`), then each half projected
    onto its direction (the half-size problems), whose Gram matrices also certify that both
    halves really are parallel; all groups of a level batched. Fewer than half parallel, or a
    half that is not: not B.P (raises). The tolerances (``exact`` on squared ratios) only reject
    matrices far from any B.P.
    """
    n = matrix.shape[0]
    tol = _exact_for(matrix)
    mats, cols = np.ascontiguousarray(matrix)[None], np.arange(n)[None]
    weights = _pair_weights(n // 2, np.iscomplexobj(matrix))
    while mats.shape[-1] > 2:
        groups, m, _ = mats.shape
        vec = mats.reshape(groups, 2, m // 2, m)
        parallel = _parallel_to_strongest(vec, weights[: m // 2], tol)
        count = parallel.sum(axis=1)
        if np.any(count < m // 2):
            raise RouteUnavailable(f"not B.P: at split size {m}, only {int(count.min())} of {m} columns "
                                   f"share a direction (a B.P needs {m // 2})")
        if np.any(count > m // 2):
            return None
        halves = []
        for members in (np.nonzero(parallel)[1], np.nonzero(~parallel)[1]):
            members = members.reshape(groups, m // 2)
            coords, spread = _project_pairs(np.take_along_axis(vec, members[:, None, None, :], axis=3))
            if spread > tol:
                raise RouteUnavailable(f"not B.P: at split size {m}, a half is not parallel")
            halves.append((coords, np.take_along_axis(cols, members, axis=1)))
        mats = np.stack([halves[0][0], halves[1][0]], axis=1).reshape(2 * groups, m // 2, m // 2)
        cols = np.stack([halves[0][1], halves[1][1]], axis=1).reshape(2 * groups, m // 2)
    return cols.reshape(-1).astype(np.int64)


def _pair_weights(count: int, complex_: bool) -> np.ndarray:
    """Two fixed random weights per row pair ``(count, 2)`` (complex for a complex matrix)."""
    rng = np.random.default_rng(_PROBE_SEED)
    weights = rng.standard_normal((count, 2))
    return weights + 1j * rng.standard_normal((count, 2)) if complex_ else weights


def _parallel_to_strongest(vec: np.ndarray, weights: np.ndarray, tol: float) -> np.ndarray:
    """``(G, k)`` bool: is column j's 2-vector parallel to the strongest column's at every pair?

    Parallel at every pair b means ``cross_b = r0_b v1_bj - r1_b v0_bj = 0`` for all b, tested
    through two random combinations ``sum_b w_b cross_b``: two matrix products with no
    temporaries, instead of N^2 cross products (a non-parallel column passes only if both
    random combinations cancel to 1e-6, which has probability ~1e-12). Each combination is
    compared with its Cauchy-Schwarz bound ``||w r|| ||v_j||``.
    """
    v0, v1 = vec[:, 0], vec[:, 1]
    energy = _column_energy(vec)  # (G, k)
    ref = np.take_along_axis(vec, np.argmax(energy, axis=1)[:, None, None, None], axis=3)[..., 0]
    u0 = ref[:, 0, :, None] * weights  # (G, m/2, 2)
    u1 = ref[:, 1, :, None] * weights
    combo = np.swapaxes(u0, 1, 2) @ v1 - np.swapaxes(u1, 1, 2) @ v0  # (G, 2, k)
    bound = np.sqrt(np.sum(np.abs(u0) ** 2 + np.abs(u1) ** 2, axis=1))[:, :, None] * np.sqrt(energy)[:, None, :]
    return np.all(np.abs(combo) <= np.sqrt(tol) * bound, axis=1)


def _column_energy(vec: np.ndarray) -> np.ndarray:
    """``(G, k)``: sum over the first two axes of |vec|^2 for a C-contiguous ``(G, 2, B, k)``.

    A complex array is read through its float view (real and imaginary parts interleaved), so
    one einsum pass does it without a conjugated temporary.
    """
    if not np.iscomplexobj(vec):
        return np.einsum("gpbj,gpbj->gj", vec, vec)
    flat = np.ascontiguousarray(vec).view(np.finfo(vec.dtype).dtype)
    return np.einsum("gpbj,gpbj->gj", flat, flat).reshape(vec.shape[0], vec.shape[3], 2).sum(axis=2)


def _project_pairs(sub: np.ndarray) -> tuple[np.ndarray, float]:
    """``(G, m/2, h)``: each pair's 2-vectors as multiples of their common (dominant) direction,
    and the relative energy off those directions (rounding level when the half is parallel)."""
    v0, v1 = sub[:, 0], sub[:, 1]
    gram = np.empty((*v0.shape[:2], 2, 2), dtype=np.result_type(sub.dtype, np.float64))
    gram[..., 0, 0] = np.vecdot(v0, v0).real
    gram[..., 1, 1] = np.vecdot(v1, v1).real
    gram[..., 1, 0] = np.vecdot(v0, v1)  # sum_j conj(v0) v1
    gram[..., 0, 1] = gram[..., 1, 0].conj()
    vals, vecs = np.linalg.eigh(gram)
    spread = float(np.sum(np.maximum(vals[..., 0], 0.0)) / max(float(np.sum(vals)), np.finfo(np.float64).tiny))
    top = vecs[..., -1].conj()  # (G, m/2, 2)
    return top[..., 0, None] * v0 + top[..., 1, None] * v1, spread


def _certify_rank1(ordered: np.ndarray) -> None:
    """Raise unless every block of every split is rank one under the discovered order.

    That is the exact-B.P condition itself (section 4 of the notes), tested with two fixed
    random probe vectors per block: the images of a rank-one block are parallel, so the 2x2
    Gram determinant of the two images vanishes. One pass over the matrix per level, far
    cheaper than the closed-form solve it guards on matrices that are not B.P.
    """
    n = ordered.shape[0]
    levels = n.bit_length() - 1
    rng = np.random.default_rng(_PROBE_SEED)
    for lev in range(1, levels):
        hi, lo = n >> lev, 1 << lev
        blocks = ordered.reshape(hi, lo, hi, lo).transpose(1, 2, 0, 3)  # (b, a, c, e)
        images = blocks @ rng.standard_normal((lo, 2))  # (b, a, c, 2)
        gram = np.einsum("bacp,bacq->bapq", images.conj(), images)
        det = np.abs(gram[..., 0, 0] * gram[..., 1, 1] - np.abs(gram[..., 0, 1]) ** 2)
        scale = np.abs(gram[..., 0, 0] * gram[..., 1, 1])
        if np.sum(det) > _exact_for(ordered) * np.sum(scale):
            raise RouteUnavailable(f"not B.P: the blocks of split level {lev} are not rank one "
                                   "under the discovered order")


def _exact_for(matrix: np.ndarray) -> float:
    """The rel_error threshold of the matrix's real precision."""
    return exact_threshold(str(np.real(np.empty(0, matrix.dtype)).dtype))


def _real_rank2(matrix: np.ndarray) -> tuple[list[Step], dict[str, Any]]:
    from .real_routes import solve_real_rank2

    # strict: a matrix with no rank-2 order is rejected at its first failed class search.
    return solve_real_rank2(matrix, strict=True)


def _two_butterfly(matrix: np.ndarray) -> tuple[list[Step], dict[str, Any]]:
    try:
        from .two_butterfly import solve_two_butterfly
    except ImportError as exc:
        raise RouteUnavailable(f"two-butterfly route not installed ({exc})") from None
    return solve_two_butterfly(matrix)


def _approximate(matrix: np.ndarray, budget: int) -> tuple[list[Step], dict[str, Any]]:
    try:
        from .approximate import solve_approximate
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
