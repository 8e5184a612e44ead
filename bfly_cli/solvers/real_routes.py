"""The real rank-2 route: exact factors for real transforms that are not real butterflies.

DCT-II, DST-II (both scalings) and any real ``T = Re(B P)`` are sums of two butterflies with one
column order, so under that order every block of every split has rank <= 2. The route discovers
the order from the matrix (:mod:`.plane_permutation`, two grouping strategies, the first that
factors exactly wins) and factors it in closed form (:mod:`.rank2`). Result: steps
``[permutation, rank2]`` (structure ``"QP"``), 8 N (log2 N - 1) real parameters.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..factors import Step, rank2_multiply
from . import RouteUnavailable
from .plane_permutation import STRATEGIES, discover_plane_permutation
from .rank2 import factor_rank2

EXACT = 1e-12


def solve_real_rank2(matrix: np.ndarray) -> tuple[list[Step], dict[str, Any]]:
    """``[permutation, rank2]`` for a real matrix; the most accurate of the grouping strategies.

    Raises :class:`RouteUnavailable` for a complex matrix (the route's factors are real).
    """
    if np.iscomplexobj(matrix):
        raise RouteUnavailable("the rank-2 route is for real matrices; this one is complex")
    if matrix.shape[0] < 4:
        raise RouteUnavailable("the rank-2 route needs N >= 4")
    best: tuple[float, list[Step], str] | None = None
    for strategy in STRATEGIES:
        perm = discover_plane_permutation(matrix, strategy)
        stages = factor_rank2(matrix[:, perm])
        err = _relative_error(stages, matrix[:, perm])
        if best is None or err < best[0]:
            best = (err, [Step("permutation", perm), Step("rank2", stages.astype(matrix.dtype))], strategy)
        if err <= EXACT:
            break
    return best[1], {"rank2_grouping": best[2]}


def _relative_error(stages: np.ndarray, target: np.ndarray) -> float:
    """``||Q - T||_F / ||T||_F`` for the column-ordered target (chunked through the identity)."""
    dense = rank2_multiply(stages, np.eye(target.shape[0], dtype=stages.dtype)).T
    norm = float(np.linalg.norm(target))
    return float(np.linalg.norm(dense - target)) / norm if norm > 0 else float(np.linalg.norm(dense))
