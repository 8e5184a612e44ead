"""A cyclic row order read off ``G = T T^H``, for a circulant shuffled on both sides.

``T = P C Q`` (``C`` circulant, ``P``, ``Q`` permutations) has ``T T^H = P (C C^H) P^T``: ``Q``
cancels and ``H = C C^H`` is circulant, ``H[i, j] = h[(i - j) mod N]``. So ``G[i, j] =
h[p(i) - p(j)]``: every row of ``G`` holds the same values ``h`` (a cheap screen: sorted, the rows
agree), and the pairs at cyclic distance ``k`` are exactly the entries equal to ``h[k]``. Picking a
value that occurs nowhere else in a row (its twin ``h[-k] = conj(h[k])`` aside) and walking from row
0 to the column holding it, then on from there, visits the rows in steps of ``k``: for odd ``k``
(coprime to N, a power of two) the walk is a full cycle, an order ``pi`` with ``G[pi][:, pi]``
circulant. Any rotation, reflection or unit multiple of the cyclic index maps circulants to
circulants, so whichever of these the walk finds, ``T[pi] = C' Q'`` is a circulant with shuffled
columns, which the column-shuffled candidate of :mod:`.two_butterfly` factors.

The read-off needs distinct values in ``h``: a circulant whose ``|eigenvalues|`` are all equal
(``C C^H`` a multiple of the identity: any unitary circulant) leaves ``G`` blind to ``P`` and the
walk refuses. Decisions are relative to the noise the screen measures (the spread between the
sorted rows), never to exact ties.
"""

from __future__ import annotations

import numpy as np

from .. import RouteUnavailable

_SCREEN_ROWS = 64
_SCREEN_SEED = 20261203
_SAMPLE = 256  # columns of row 0 whose values are scored as the walk's step
_CANDIDATES = 16  # values tried as the walk's step, most isolated first (twins skipped: an even step
# never closes, and half the distances are even)
_ISOLATION = 16.0  # a step value must stand this many noise levels apart from every other value in its row


def sorted_row_spread(t: np.ndarray, rows: int = _SCREEN_ROWS) -> float:
    """Relative spread of the sorted rows of ``T T^H`` on a fixed sample of rows: ~0 (the noise)
    when the rows of ``T T^H`` are permutations of one vector, O(1/sqrt(N))..O(1) otherwise.
    Costs ``rows x N^2`` instead of the ``N^3`` of the whole Gram matrix."""
    n = t.shape[0]
    idx = np.sort(np.random.default_rng(_SCREEN_SEED).choice(n, min(rows, n), replace=False))
    block = t[idx] @ t.conj().T
    ordered = _sorted_rows(block)
    size = float(np.linalg.norm(ordered))
    return float(np.linalg.norm(ordered - ordered.mean(axis=0))) / size if size > 0 else 0.0


def cyclic_row_order(g: np.ndarray, spread: float) -> np.ndarray:
    """An order ``pi`` of the rows with ``g[pi][:, pi]`` circulant (``g = P H P^T``, ``H`` circulant).

    ``spread`` is :func:`sorted_row_spread`'s relative noise; a step value must be isolated from
    every other value of row 0 by :data:`_ISOLATION` times that noise (and rounding). Raises
    :class:`RouteUnavailable` when no value is isolated enough or no walk closes into one cycle.
    """
    n = g.shape[0]
    row = g[0]
    scale = float(np.max(np.abs(g)))
    noise = max(spread, 64 * np.finfo(np.float64).eps) * scale
    isolation = _isolation(row)
    tried: list[complex] = []
    for j in np.argsort(-isolation):
        if len(tried) >= _CANDIDATES or isolation[j] < _ISOLATION * noise:
            break
        if any(abs(row[j] - v) <= 8 * noise for v in tried):
            continue  # the twin h[-k] of a value already walked: the same step, the same failure
        tried.append(row[j])
        order = _walk(g, int(j), row[j], noise)
        if order is not None:
            return _undilated(g, order)
    if not tried:
        raise RouteUnavailable("T T^H has no value distinct enough to read a cyclic row order from "
                               "(all |eigenvalues| equal, or too noisy)")
    raise RouteUnavailable(f"no cyclic row order: {len(tried)} walks through T T^H did not close into one cycle of {n}")


def _isolation(row: np.ndarray) -> np.ndarray:
    """Per column j > 0 of a fixed sample (and the row's outliers): the distance from ``row[j]`` to the nearest other entry
    of ``row`` that is not its twin (the third smallest distance: itself, its twin, then the
    nearest stranger); -inf for the columns not sampled and for the diagonal ``row[0]``."""
    n = row.size
    out = np.full(n, -np.inf)
    sample = np.random.default_rng(_SCREEN_SEED).choice(np.arange(1, n), min(_SAMPLE, n - 1), replace=False)
    # plus the entries farthest from the row's typical value: a short filter's few nonzero
    # distances (3 taps: 4 entries of N) are the only usable steps and a sample would miss them
    outliers = np.argsort(-np.abs(row - np.median(row.real)))[:_SAMPLE // 4]
    for j in np.union1d(sample, outliers[outliers > 0]):
        dist = np.abs(row - row[j])
        out[j] = np.partition(dist, 2)[2] if n > 3 else 0.0
    return out


def _walk(g: np.ndarray, first: int, value: complex, noise: float) -> np.ndarray | None:
    """Rows visited stepping by ``value`` from row 0 through ``first``; None unless the steps stay
    within the noise and the walk returns to row 0 after exactly N rows."""
    n = g.shape[0]
    order = np.empty(n, dtype=np.int64)
    order[0], order[1] = 0, first
    seen = np.zeros(n, dtype=bool)
    seen[[0, first]] = True
    cur = first
    for k in range(2, n):
        dist = np.abs(g[cur] - value)
        dist[seen] = np.inf
        nxt = int(np.argmin(dist))
        if not dist[nxt] <= 8 * noise:
            return None
        order[k], cur = nxt, nxt
        seen[nxt] = True
    return order if abs(g[cur, 0] - value) <= 8 * noise else None


def _undilated(g: np.ndarray, order: np.ndarray) -> np.ndarray:
    """The walk's order re-indexed by the odd multiplier ``u`` that makes ``G[pi][:, pi]``'s filter
    most concentrated around index 0 (least ``sum_m |h[u m]|^2 min(m, N - m)^2``).

    Why: a walk with step ``k`` finds the rows in the order ``i -> k i``, a circulant whose filter
    is the true one dilated, ``c[k m]``: still a circulant, but a short filter is then spread over
    the whole period (taps at multiples of ``k^-1``), and the eigenbasis read-off fails on such
    spread-out sparse filters where it is exact on the short one. ``H = C C^H`` is short exactly
    when ``C`` is, so its filter (row ``pi[0]`` of ``G``, in walk order) tells which multiplier
    undoes the dilation. ``u = 1`` is kept unless another is clearly (2x) more concentrated.
    """
    n = g.shape[0]
    power = np.abs(g[order[0], order]) ** 2
    m = np.arange(n)
    dist = np.minimum(m, n - m).astype(np.float64) ** 2
    odd = np.arange(1, n, 2)
    cost = np.array([float(np.dot(power[(u * m) % n], dist)) for u in odd])
    best = int(np.argmin(cost))
    if not cost[best] < 0.5 * cost[0]:
        return order
    return order[(odd[best] * m) % n]


def _sorted_rows(block: np.ndarray) -> np.ndarray:
    """Each row sorted (complex: real and imaginary parts sorted apart, a permutation-blind key)."""
    if np.iscomplexobj(block):
        return np.sort(block.real, axis=1) + 1j * np.sort(block.imag, axis=1)
    return np.sort(block, axis=1)
