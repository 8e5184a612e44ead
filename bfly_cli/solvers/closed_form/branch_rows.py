"""A row order for ``T = P_out S P_in`` read off one rank-one branch of S's top stages.

With both sides shuffled, the one-sided discoveries (:mod:`.bp_order`, :mod:`.rank2_order`)
need only the rows in a valid order: then they find the columns at the clean solve's cost. The
rows are what the two-sided searches (:mod:`.row_pairing`, :mod:`.rank2_rows`) spend their time
on, and the rank-2 one cannot seed at all on a Hartley matrix (rows k and k + N/2 are parallel on
every class of level L-2, so any two such pairs look like a quadruple).

Many structured matrices have a **rank-one top stage** even when the chain below it is rank 2:
the Hartley transform's rows k and k + N/2 agree on the even columns and are opposite on the odd
ones (``cas(x + pi n) = (-1)^n cas x``), a B.P's every stage is rank one. The pairing of
:mod:`.row_pairing` finds such pairs and the two column halves in O(N^2) (no search), and
projecting onto the halves leaves two half-size problems that share the pair index as their
rows. The row order needs only **one** of them to be rank one again: its pairs are the row sets
of the next level for the whole matrix, since every half shares the row index. Following one
branch costs O(N^2) in all (the problems shrink by 4 per level), against O(N^2 log N) for pairing
every group (:mod:`.row_pairing`) and a plane search for the rank-2 seed.

Which half: the Hartley's even half is a Hartley of half the size (rank one on top again, with
the same pairing rule), its odd half pairs ``k`` with ``N/4 - k`` instead, a pairing valid for it
alone. So the halves are explored depth first, the first half first, and each complete path is a
*candidate* row order, which the caller certifies on the whole matrix (the one-sided discovery and
the fit's noise floor). A path that stops being rank one is abandoned at once; at most
:data:`_PAIRINGS` pairings are computed. Noise moves the two-line residuals and fingerprints by
about its own size (see :mod:`.row_pairing`), so the same paths are found up to eps ~ 1e-4.
"""

from __future__ import annotations

import weakref
from typing import Iterator

import numpy as np

from .. import RouteUnavailable
from .bp_order import _dominant_direction_split
from .row_pairing import _compose, pair_rows_and_halves

_PAIRINGS = 48  # pairings computed at most (a clean path takes log2 N; dead ends cost one each)
_CANDIDATES = 2  # complete paths kept (the second differs from the first only below its last choice)


def branch_row_orders(matrix: np.ndarray, limit: int = _CANDIDATES) -> list[np.ndarray]:
    """Up to ``limit`` candidate row orders ``rows`` (int64), best first: ``matrix[rows]`` has rows
    ``c`` and ``c + N/2`` paired at the top, and so on down one rank-one branch.

    Empty when the matrix's top stage is not rank one (the first pairing fails: a matrix with no
    rank-one branch pays one screen). Every candidate must be certified by the caller. The
    answer for the last matrix is kept (:func:`_remembered`): ``--solver auto`` asks the B.P
    route and then the rank-2 route about the same matrix, and a Hartley matrix, which the B.P
    route rejects after reading its rows, would otherwise pay for them twice.
    """
    n = matrix.shape[0]
    if n < 4:
        return []
    known = _remembered(matrix)
    if known is None:
        known = []
        for orders in _paths(np.ascontiguousarray(matrix), [], [_PAIRINGS]):
            known.append(_compose(orders))
            if len(known) >= _CANDIDATES:
                break
        _LAST[:] = [weakref.ref(matrix), _sample(matrix), known]
    return known[:limit]


_LAST: list = [None, None, None]  # the last matrix (weak reference), a sample of its entries, its candidates


def _remembered(matrix: np.ndarray) -> list[np.ndarray] | None:
    """The candidates computed for this very array (same object, same sampled entries), else None."""
    ref, sample, known = _LAST
    if ref is None or ref() is not matrix or not np.array_equal(sample, _sample(matrix)):
        return None
    return known


def _sample(matrix: np.ndarray) -> np.ndarray:
    """A few hundred entries spread over the matrix: a changed array is not taken for the same."""
    step = max(1, matrix.shape[0] // 16)
    return np.array(matrix[::step, 1::step])


def _paths(mats: np.ndarray, orders: list[np.ndarray], budget: list[int]) -> Iterator[list[np.ndarray]]:
    """Depth-first over the halves: the pairings of every complete rank-one path from ``mats (m, m)``."""
    if budget[0] <= 0:
        return
    budget[0] -= 1
    m = mats.shape[0]
    try:
        order, halves = pair_rows_and_halves(mats[None])
    except RouteUnavailable:
        return
    if m <= 4:  # the pair index of the next level has two rows: always one pair
        yield orders + [order]
        return
    for side in (halves[0], ~halves[0]):
        yield from _paths(_half(mats, order, np.nonzero(side)[0]), orders + [order], budget)


def _half(mats: np.ndarray, order: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """The half-size problem on ``cols``: each pair's two rows (``order``: tops, then bottoms)
    projected onto their common direction there (the least squares rank-one fit of the pair's
    2 x m/2 block). One gather of the half's rows and columns, no reordered copy of the whole."""
    h = order.size // 2
    block = mats[np.ix_(order, cols)]
    x0, x1 = block[:h], block[h:]
    direction = _dominant_direction_split(x0, x1)  # (h, 2)
    return np.ascontiguousarray(direction[:, 0, None].conj() * x0 + direction[:, 1, None].conj() * x1)
