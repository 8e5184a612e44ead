"""The real rank-2 route: exact factors for real transforms that are not real butterflies.

DCT-II, DST-II (both scalings), the Hartley transform and any real ``T = Re(B P)`` are sums of
two butterflies with one column order, so under that order every block of every split has rank
<= 2. The route discovers the order from the matrix (:mod:`.rank2_order`) and factors it
in closed form (:mod:`.rank2_factor`). Result: steps ``[permutation, rank2]`` (structure ``"QP"``),
8 N (log2 N - 1) real parameters. When no column order exists with the rows in place, the rows
may be permuted too (``P_out Q P_in``, a spectrum in another bin order): :mod:`.rank2_rows`
discovers both orders, steps ``[permutation, rank2, permutation]`` (``PQP``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...factors import Step
from ...metrics import NEAR_EXACT
from .. import RouteUnavailable
from ...chain_algebra import transpose_steps
from .branch_rows import branch_row_orders
from .rank2_order import NoRankTwoOrder, discover_plane_permutation
from .rank2_factor import factor_with_noise_floor
from .rank2_rows import solve_rank2_two_sided


def solve_real_rank2(matrix: np.ndarray, strict: bool = False) -> tuple[list[Step], dict[str, Any]]:
    """``[permutation, rank2]`` for a real matrix (best effort when it has no rank-2 order).

    Raises :class:`RouteUnavailable` for a complex matrix (the route's factors are real) and,
    with ``strict`` (the auto solver, which only keeps exact routes), as soon as the order
    discovery proves that no rank-2 order exists, skipping the rest of the search and the fit.
    ``rank2_order`` in the metadata says whether every column class had a valid size
    (``"consistent"``) or the order is a best-effort grouping (``"best effort"``);
    ``rank2_noise_floor`` is the relative noise ``eps`` the factorization estimated from the
    matrix (``||E||_F / ||A||_F`` of its distance from the structure, about 1e-16 for a clean
    matrix, 0.0 at N = 8 where nothing is left over to measure it) and decided its ranks by.
    Every decision, in the order discovery and in the factorization, is relative to that floor
    (a gap between members and non-members, a margin over the noise), never to a fixed 1e-10:
    see ``docs/rank2-noise.md``.
    """
    if np.iscomplexobj(matrix):
        raise RouteUnavailable("the rank-2 route is for real matrices; this one is complex")
    if matrix.shape[0] < 4:
        raise RouteUnavailable("the rank-2 route needs N >= 4")
    try:
        found = discover_plane_permutation(matrix, strict=strict)
    except NoRankTwoOrder as exc:
        return _two_sided(matrix, f"no column order gives rank-2 blocks: {exc}")
    fit = factor_with_noise_floor(matrix[:, found.perm])
    steps = [Step("permutation", found.perm), Step("rank2", fit.stages.astype(matrix.dtype))]
    meta = {"rank2_order": "consistent" if found.consistent else "best effort", "rank2_noise_floor": fit.noise}
    return steps, meta


def _two_sided(matrix: np.ndarray, one_sided: str) -> tuple[list[Step], dict[str, Any]]:
    """``[P_in, rank2, P_out]`` when the rows are permuted too; both reasons when neither applies.

    The transpose comes first: a symmetric transform (Hartley) with its rows shuffled is one
    with its columns shuffled in ``T^T``, ordered at the clean solve's cost. With both sides
    shuffled, a row order read off a rank-one branch of the top stages comes next
    (:func:`_solve_by_branch`; the Hartley transform has one, a DCT-II's transpose too); the two-sided search
    (:mod:`.rank2_rows`), which cannot seed on a Hartley matrix, runs only when both fail.
    """
    transposed = _solve_transposed(matrix)
    if transposed is not None:
        return transposed
    branch = _solve_by_branch(matrix)
    if branch is not None:
        return branch
    try:
        return solve_rank2_two_sided(matrix)
    except RouteUnavailable as exc:
        raise RouteUnavailable(f"{one_sided}; with the rows permuted too: {exc}") from None


def _solve_by_branch(matrix: np.ndarray) -> tuple[list[Step], dict[str, Any]] | None:
    """``T = P_out Q P_in`` with the rows ordered by :mod:`.branch_rows`, else None.

    The branch is read off ``T`` and, when ``T``'s top stage is not rank one, off ``T^T``, whose
    rows are ``T``'s columns: a DCT-II's rows have no rank-one top stage, but its transpose
    (a DCT-III) has one at every level (rows n and N-1-n agree on the even columns and are
    opposite on the odd ones, and the even half is a DCT-III of half the size). The chain found
    for ``T^T`` is transposed back exactly (:mod:`bfly_cli.chain_algebra`).
    """
    found = _branch_chain(matrix)
    if found is not None:
        return found
    found = _branch_chain(matrix.T)
    if found is None:
        return None
    steps, meta = found
    return transpose_steps(steps), meta


def _branch_chain(matrix: np.ndarray) -> tuple[list[Step], dict[str, Any]] | None:
    """``[P_in, rank2, P_out]`` of ``matrix`` from a branch row order, or None.

    Each candidate row order is certified as the transpose's is: a consistent one-sided order
    of ``T[rows]`` (strict) whose fit explains it within NEAR_EXACT (``P_out = rows^-1``).
    """
    for rows in branch_row_orders(matrix):
        ordered = matrix[rows]
        try:
            found = discover_plane_permutation(ordered, strict=True)
        except NoRankTwoOrder:
            continue
        if not found.consistent:
            continue
        fit = factor_with_noise_floor(ordered[:, found.perm])
        if not fit.noise <= NEAR_EXACT:
            continue
        steps = [Step("permutation", found.perm), Step("rank2", fit.stages.astype(matrix.dtype)),
                 Step("permutation", np.argsort(rows).astype(np.int64))]
        return steps, {"rank2_order": "consistent", "rank2_rows": "permuted", "rank2_noise_floor": fit.noise}
    return None


def _solve_transposed(matrix: np.ndarray) -> tuple[list[Step], dict[str, Any]] | None:
    """``T = P_out Q P_in`` from a consistent one-sided rank-2 order of ``T^T``, else None.

    Accepted only when the order is consistent and the fit's own noise estimate says the
    structure explains ``T^T`` (relative noise <= NEAR_EXACT); the chain is then transposed back
    exactly (:mod:`bfly_cli.chain_algebra`): steps ``[R, Q'', R P^-1]``, structure ``PQP``.
    """
    transposed = np.ascontiguousarray(matrix.T)  # the discovery reads rows: faster than on the view
    try:
        found = discover_plane_permutation(transposed, strict=True)
    except NoRankTwoOrder:
        return None
    if not found.consistent:
        return None
    fit = factor_with_noise_floor(transposed[:, found.perm])
    if not fit.noise <= NEAR_EXACT:
        return None
    steps = transpose_steps([Step("permutation", found.perm), Step("rank2", fit.stages.astype(matrix.dtype))])
    return steps, {"rank2_order": "consistent", "rank2_rows": "permuted", "rank2_noise_floor": fit.noise}
