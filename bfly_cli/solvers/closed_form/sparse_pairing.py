"""Two-sided B.P for sparse butterflies: rows that vanish on whole half-blocks.

When a 2x2 block of the last stage is diagonal its rows are ``(x, 0)`` and ``(0, y)``, and
``(x, 0)`` is "parallel" to every row vanishing on the first half: the partner is not determined
at its own level (Haar, permutations, block-diagonal butterflies, zeroed twiddles) but by the
levels below, since ``x`` and the chosen ``y'`` become one row there. So the pairing is deferred:

* **Support**: entries above the noise floor (:func:`.row_pairing.support_floor`).
* **Determined pairs**: equal supports whose 2-vectors lie on two lines, or nested supports
  parallel on the smaller one. Each says which columns share a half; rows on one half pair only
  at the next level yet look alike, so candidates are accepted greedily, widest support first,
  while their parity relations stay consistent and balanced. Rows left over lie on one half.
  The relations (a parity union-find) and a balanced choice of flips give the column halves.
* **Deferral**: the two half problems (pairs projected onto each half, plus the one-sided rows)
  are solved recursively, the more rigid first; the other is asked (``want``) to put the shared
  pairs at the same positions, and a row-tree automorphism (flip an index bit for the rows with
  given lower bits: it keeps a butterfly a butterfly) aligns the rest. One-sided rows then meet
  their partners position by position.
* **Blocks**: a support with square power-of-two components is block diagonal; components are
  solved alone and interleaved on an index bit (a stage that is the identity) chosen by ``want``.
  Dense sub-problems go to the dense discovery passed in.

Nothing compares with ``== 0``: every decision is relative to the floor; the caller certifies the
result (rank one at every level).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .. import RouteUnavailable
from .bp_order import _balanced_halves, _direction_from_gram
from .row_pairing import _bloch, _ParityForest, _sq

Solver = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]

_POINT_TOL = 1e-12  # squared Bloch distance two clean parallel 2-vectors may differ by (rounding)
_NOISE_TOL = 8.0  # times (floor / magnitude)^2: how far noise at the floor moves a 2-vector's direction
_FOREST_RELATIONS = 2048  # up to this many lone-row relations the union-find beats a graph pass
_CHUNK = 1 << 22  # elements per gathered block of row pairs


def discover_sparse(matrix: np.ndarray, floor: float, dense: Solver) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, cols)`` making ``matrix[rows][:, cols]`` a butterfly, for a sparse two-sided B.P.

    ``dense`` solves a sub-problem without zeros (the discovery of :mod:`.row_pairing`). Raises
    :class:`RouteUnavailable` when the support admits no consistent split.
    """
    return _solve(np.ascontiguousarray(matrix), floor, dense)


def _solve(t: np.ndarray, floor: float, dense: Solver, want: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One (sub-)problem: trivial sizes, dense, block diagonal, or one level split.

    ``want`` (m,) holds a desired position per row (-1: none): the sibling half problem's
    placement of the rows they share. Where the structure leaves the order free (2x2 problems,
    stacked blocks, the two rows of a 2x2 block) it is honoured; elsewhere the caller's
    automorphism aligns what remains.
    """
    m = t.shape[0]
    want = np.full(m, -1, dtype=np.int64) if want is None else want
    if m <= 2:
        rows = np.arange(m)
        if m == 2 and (want[0] == 1 or want[1] == 0):
            rows = rows[::-1].copy()
        return rows, np.arange(m)
    mask = _sq(t) > floor * floor
    if mask.all():
        rows, cols = dense(t)
    elif (blocks := _square_components(mask)) is not None:
        rows, cols = _block_diagonal(t, floor, dense, blocks, want)
    else:
        rows, cols = _split_level(t, mask, floor, dense, want)
    return _honour(rows, want), cols


def _honour(rows: np.ndarray, want: np.ndarray) -> np.ndarray:
    """``rows`` reordered by the row-tree automorphism that puts the most wanted rows where they
    are wanted (it keeps a butterfly a butterfly, so this is free): per index bit, low bits first,
    each class of equal lower bits flips that bit if most of its wanted rows ask for it (ties:
    no flip)."""
    h = rows.size
    pos = np.argsort(rows)
    asked = np.nonzero(want >= 0)[0]
    if asked.size == 0 or h < 2:
        return rows
    a, b = pos[asked], want[asked]
    idx = np.arange(h)
    sigma = idx.copy()
    for bit in range(h.bit_length() - 1):
        low = (1 << bit) - 1
        vote = np.bincount(a & low, weights=2.0 * (((a ^ b) >> bit) & 1) - 1.0, minlength=1 << bit)
        flip = (vote > 0).astype(np.int64)
        sigma ^= flip[idx & low] << bit
    out = np.empty_like(rows)
    out[sigma] = rows
    return out



def _square_components(mask: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """The (rows, cols) of each connected component of the support, largest first, when there
    are several and all are square with power-of-two sizes (then the matrix is block diagonal in
    butterfly form); None otherwise (the level split handles other shapes)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    m = mask.shape[0]
    if mask.all(axis=1).any() or mask.all(axis=0).any():
        return None  # a full row or column connects everything (Haar's mean row): skip the graph
    r, c = np.nonzero(mask)
    graph = coo_matrix((np.ones(r.size, dtype=np.int8), (r, c + m)), shape=(2 * m, 2 * m))
    count, labels = connected_components(graph, directed=False)
    if count == 1:
        return None
    blocks = []
    for lab in range(count):
        rows = np.nonzero(labels[:m] == lab)[0]
        cols = np.nonzero(labels[m:] == lab)[0]
        size = rows.size
        if size != cols.size or size & (size - 1):
            return None
        blocks.append((rows, cols))
    blocks.sort(key=lambda rc: (-rc[0].size, int(rc[0][0])))
    return blocks


def _block_diagonal(t: np.ndarray, floor: float, dense: Solver,
                    blocks: list[tuple[np.ndarray, np.ndarray]], want: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Solve every component alone and interleave them into one butterfly.

    Two butterflies of size M/2 make one of size M whose stage ``bit`` is the identity: the first
    on the indices with that bit 0 (rows and columns alike), the second on those with it 1,
    the other bits in order. The blocks are split into two groups of M/2 (largest first), the
    bit (and which group takes 0) is the one most wanted rows agree with (default: the top bit,
    i.e. the blocks stacked), and each group is interleaved the same way, recursively.
    """
    if len(blocks) == 1:
        r, c = blocks[0]
        lr, lc = _solve(np.ascontiguousarray(t[np.ix_(r, c)]), floor, dense, want[r])
        return r[lr], c[lc]
    m = sum(r.size for r, _ in blocks)
    inside = np.zeros(t.shape[0], dtype=bool)
    for r, _ in blocks:
        inside[r] = True
    want = np.where(inside, want, -1)  # rows of other groups place nothing here
    groups, bit, swap = _groups_and_bit(blocks, want, m)
    low = (1 << bit) - 1
    parts = []
    for g in (0, 1):
        agree = (want >= 0) & (((want >> bit) & 1) == (g ^ swap))
        sub_want = np.where(agree, (want & low) | ((want >> (bit + 1)) << bit), -1)
        parts.append(_block_diagonal(t, floor, dense, groups[g], sub_want))
    q = np.arange(m // 2)
    spread = [(q & low) | (((q >> bit) << (bit + 1)) | ((g ^ swap) << bit)) for g in (0, 1)]
    rows, cols = np.empty(m, dtype=np.int64), np.empty(m, dtype=np.int64)
    for g in (0, 1):
        rows[spread[g]], cols[spread[g]] = parts[g]
    return rows, cols


def _groups_and_bit(blocks: list[tuple[np.ndarray, np.ndarray]], want: np.ndarray,
                    m: int) -> tuple[tuple[list, list], int, int]:
    """The two groups of m/2, the separating bit and the swap (group g on bit value g ^ swap).

    Equal blocks (a permutation's 1x1 blocks) are grouped by the bit most wanted rows agree
    with, each block on the side its wanted rows ask for. Unequal blocks fill group 0 largest
    first (exactly m/2: powers of two), and only the bit is chosen. Ties: the top bit (a stack).
    """
    top = m.bit_length() - 2
    owner = np.full(want.size, -1)
    for k, (r, _) in enumerate(blocks):
        owner[r] = k
    asked = np.nonzero((want >= 0) & (owner >= 0))[0]
    equal = all(r.size == blocks[0][0].size for r, _ in blocks)
    if not equal:
        side = np.cumsum([0] + [r.size for r, _ in blocks])[:-1] >= m // 2  # largest first fill
    best = None
    for bit in ([top] if asked.size == 0 else range(top, -1, -1)):
        value = (want[asked] >> bit) & 1
        for swap in ((0,) if equal else (0, 1)):
            if equal:
                side = _equal_sides(np.bincount(owner[asked], weights=2.0 * value - 1.0, minlength=len(blocks)))
            score = int(np.sum(value == (side[owner[asked]] ^ swap)))
            if best is None or score > best[0]:
                best = (score, side.copy(), bit, swap)
    _, side, bit, swap = best
    groups = ([b for b, s in zip(blocks, side) if not s], [b for b, s in zip(blocks, side) if s])
    return groups, bit, swap


def _equal_sides(vote: np.ndarray) -> np.ndarray:
    """Per equal block its side (bool), half the blocks each: a block goes where its vote points
    while that side has room (in block order), the rest fill the free places in order."""
    cap = vote.size // 2
    want_one, want_zero = vote > 0, vote < 0
    one = want_one & (np.cumsum(want_one) <= cap)
    zero = want_zero & (np.cumsum(want_zero) <= cap)
    free = ~(one | zero)
    room_one = cap - int(one.sum())
    side = one.copy()
    side[np.nonzero(free)[0][:room_one]] = True
    return side


def _split_level(t: np.ndarray, mask: np.ndarray, floor: float, dense: Solver,
                 want: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The top level of a connected sparse problem: determined pairs, halves, deferred pairing.

    The half problem with the larger support (the more rigid one) is solved first; the other is
    then asked to put the shared pairs where the first did, and an automorphism aligns the rest.
    """
    m, h = t.shape[0], t.shape[0] // 2
    pairs, side_a = _pairs_and_halves(t, mask, floor)
    paired = np.zeros(m, dtype=bool)
    paired[pairs.ravel()] = True
    lone = _one_sided_rows(mask, paired, side_a)
    cols = (np.nonzero(side_a)[0], np.nonzero(~side_a)[0])
    subs = [_half_problem(t, pairs, lone[s], cols[s]) for s in (0, 1)]
    asked = np.max(want[pairs], axis=1) if pairs.size else np.zeros(0, dtype=np.int64)
    pair_want = np.where(asked < 0, -1, asked % h)
    wants = [np.concatenate([pair_want, np.where(want[lone[s]] < 0, -1, want[lone[s]] % h)]) for s in (0, 1)]
    first = 0 if np.count_nonzero(_sq(subs[0]) > floor * floor) >= np.count_nonzero(_sq(subs[1]) > floor * floor) else 1
    solved: list = [None, None]
    solved[first] = _solve(subs[first], floor, dense, wants[first])
    other = 1 - first
    placed = np.argsort(solved[first][0])[: pairs.shape[0]]
    wants[other][: pairs.shape[0]] = placed
    solved[other] = _solve(subs[other], floor, dense, wants[other])
    rows = _merge(pairs, lone, solved[0][0], solved[1][0], want)
    return rows, np.concatenate([cols[0][solved[0][1]], cols[1][solved[1][1]]]).astype(np.int64)


def _pairs_and_halves(t: np.ndarray, mask: np.ndarray, floor: float) -> tuple[np.ndarray, np.ndarray]:
    """``(P, 2)`` row pairs determined at this level and the first half's column mask.

    Candidates (:func:`_candidate_edges`) carry column relations, and some are false: two rows
    on one half that pair only at the next level also look like a pair (their lines are the
    quarters of that half). All true pairs agree on one split, so candidates are accepted
    greedily, widest support first, when their rows are still free and their relations agree
    with those accepted so far (a Kruskal-like pass over a parity union-find). The rows left
    over lie on one half. Deterministic: the order is fixed by support size and index.
    """
    m = t.shape[0]
    parity = _ParityForest(m)
    used = np.zeros(m, dtype=bool)
    pairs, accepted = [], []
    for a, b, rel in _candidate_edges(t, mask, floor):
        if used[a] or used[b] or not parity.agrees(rel) or not parity.balanced_with(rel):
            continue
        parity.join(rel)
        accepted.extend(rel.tolist())
        used[a] = used[b] = True
        pairs.append((a, b))
    lone = _lone_relations(mask[~used])
    pairs_arr = np.array(sorted(pairs), dtype=np.int64).reshape(-1, 2)
    if lone.shape[0] > _FOREST_RELATIONS:  # many: one vectorized graph pass beats the Python loop
        rel = np.concatenate([np.array(accepted, dtype=np.int64).reshape(-1, 3), lone])
        return pairs_arr, _balanced_first(*_cover_classes(rel, m), m)
    if not parity.agrees(lone):
        raise RouteUnavailable("not a two-sided B.P (sparse): the pairs put a column on both halves")
    parity.join(lone)
    return pairs_arr, _balanced_first(*parity.classes(), m)


def _lone_relations(mask: np.ndarray) -> np.ndarray:
    """Same-side relations ``(first col, col, 0)`` chaining each given row's support."""
    rows, cols = np.nonzero(mask)
    first = np.full(mask.shape[0], -1)
    first[rows[::-1]] = cols[::-1]  # the smallest column of each row
    keep = cols != first[rows]
    return np.stack([first[rows][keep], cols[keep], np.zeros(int(keep.sum()), dtype=np.int64)], axis=1)


def _cover_classes(rel: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Per column its parity class and side, from relations ``(a, c, p)``, in one vectorized pass:
    components of the double cover (node j: column j on side 0, j + m: on side 1; a relation joins
    ``(a, 0)`` with ``(c, p)``). Raises when a column lands on both sides."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    a, c, flip = rel[:, 0], rel[:, 1], rel[:, 2] * m
    rows = np.concatenate([a, a + m])
    cols = np.concatenate([c + flip, c + m - flip])
    graph = coo_matrix((np.ones(rows.size, dtype=np.int8), (rows, cols)), shape=(2 * m, 2 * m))
    _, labels = connected_components(graph, directed=False)
    on0, on1 = labels[:m], labels[m:]
    if np.any(on0 == on1):
        raise RouteUnavailable("not a two-sided B.P (sparse): the pairs put a column on both halves")
    return np.minimum(on0, on1), on0 > on1


def _candidate_edges(t: np.ndarray, mask: np.ndarray, floor: float) -> list[tuple[int, int, np.ndarray]]:
    """Candidate partners ``(a, b, relations)``, a < b, in acceptance order.

    Equal supports whose 2-vectors lie on at most two lines (informative from three columns on:
    two points always lie on two lines), and nested supports parallel on the smaller one
    (informative from two columns on). Order: informative first, then wider joint support, equal
    supports before nested ones, then index. Relations: see :func:`_two_sides`.
    """
    count = mask.sum(axis=1)
    u, v, k = _overlaps(mask)
    keep = (u != v) & (k == count[v]) & (count[v] > 0)
    u, v = u[keep], v[keep]
    same = (count[u] == count[v]) & (u < v)
    nested = count[u] > count[v]
    found = []
    for a, b, lines in _two_line_pairs(t, mask, u[same], v[same], floor):
        found.append((bool(count[a] < 3), -int(count[a]), 0, a, b, lines))
    for a, b in _nested_parallel_pairs(t, mask, u[nested], v[nested], floor):
        found.append((bool(count[b] < 2), -int(count[a]), 1, min(a, b), max(a, b), _nested_relation(mask[a], mask[b])))
    found.sort(key=lambda e: e[:5])
    return [(a, b, rel) for *_, a, b, rel in found]


def _overlaps(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(u, v, k)``: row pairs with k > 0 common support columns. A float32 product for small
    problems (exact for counts below 2^24; no sparse-matrix set-up cost), a sparse one above."""
    if mask.shape[0] <= 512:
        flat = mask.astype(np.float32)
        common = flat @ flat.T
        u, v = np.nonzero(common)
        return u, v, np.rint(common[u, v]).astype(np.int64)
    from scipy.sparse import csr_matrix

    sup = csr_matrix(mask.astype(np.float32))
    overlap = (sup @ sup.T).tocoo()
    return overlap.row, overlap.col, np.rint(overlap.data).astype(np.int64)


def _balanced_first(root: np.ndarray, side: np.ndarray, m: int) -> np.ndarray:
    """The first half's column mask: one side of every parity class, m/2 columns in all."""
    first = _balanced_halves(root[None], side[None], 1, m)
    if first is None:
        raise RouteUnavailable("not a two-sided B.P (sparse): no balanced column split")
    out = np.zeros(m, dtype=bool)
    out[first[0]] = True
    return out


def _two_line_pairs(t: np.ndarray, mask: np.ndarray, u: np.ndarray, v: np.ndarray, floor: float):
    """Yield ``(u, v, relation)`` for the equal-support pairs whose 2-vectors lie on at most two
    lines (each tested against the line of its strongest point, with a tolerance growing as the
    point nears the floor); the relation: a same-side chain per line, the lines apart."""
    m = t.shape[1]
    step = max(1, _CHUNK // max(m, 1))
    for s in range(0, u.size, step):
        a, b = u[s:s + step], v[s:s + step]
        x, y, live = t[a], t[b], mask[a]
        point, weight = _bloch(x, y)
        tol = _POINT_TOL + _NOISE_TOL * floor * floor / np.where(live, weight, 1.0)
        strong = np.argmax(np.where(live, weight, -1.0), axis=1)
        d0 = np.sum((point - point[np.arange(a.size), strong][:, None]) ** 2, axis=-1)
        on0 = live & (d0 <= tol)
        rest = live & ~on0
        second = np.argmax(np.where(rest, weight, -1.0), axis=1)
        d1 = np.sum((point - point[np.arange(a.size), second][:, None]) ** 2, axis=-1)
        ok = np.all(~rest | (d1 <= tol), axis=1)
        for i in np.nonzero(ok)[0]:
            yield int(a[i]), int(b[i]), _two_sides(np.nonzero(on0[i])[0], np.nonzero(rest[i])[0])



def _nested_parallel_pairs(t: np.ndarray, mask: np.ndarray, u: np.ndarray, v: np.ndarray, floor: float):
    """Yield ``(u, v)`` where v's support is strictly inside u's and u is parallel to v there
    (Cauchy-Schwarz with equality up to the floor's share of the energies).

    Only the columns of v's support are gathered (flat, pair by pair), so the cost is the sum
    of the inner supports, not pairs x m: Haar's details nest in all their ancestors.
    """
    if u.size == 0:
        return
    starts = np.concatenate([[0], np.cumsum(mask.sum(axis=1))])
    _, support = np.nonzero(mask)  # row-major: row r's columns at starts[r]:starts[r + 1]
    step = max(1, _CHUNK // max(int(mask.sum(axis=1).max()), 1))
    for s in range(0, u.size, step):
        a, b = u[s:s + step], v[s:s + step]
        sizes = starts[b + 1] - starts[b]
        owner = np.repeat(np.arange(a.size), sizes)
        offset = np.arange(owner.size) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        col = support[starts[b][owner] + offset]
        x, y = t[a[owner], col], t[b[owner], col]
        inner = np.abs(np.bincount(owner, weights=(x * np.conj(y)).real, minlength=a.size)
                       + 1j * np.bincount(owner, weights=(x * np.conj(y)).imag, minlength=a.size)) ** 2
        ex = np.bincount(owner, weights=_sq(x), minlength=a.size)
        ey = np.bincount(owner, weights=_sq(y), minlength=a.size)
        tol = _POINT_TOL + _NOISE_TOL * sizes * floor * floor / np.maximum(np.minimum(ex, ey), 1e-300)
        ok = ex * ey - inner <= tol * ex * ey
        for i in np.nonzero(ok)[0]:
            yield int(a[i]), int(b[i])


def _nested_relation(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The smaller support on one half, the rest of the larger on the other."""
    return _two_sides(np.nonzero(inner)[0], np.nonzero(outer & ~inner)[0])


def _two_sides(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """``(k, 3)`` relations ``(col, col', parity)``: each list on one side, the two lists apart."""
    rel = [_same_side(first), _same_side(second)]
    if first.size and second.size:
        rel.append(np.array([[first[0], second[0], 1]]))
    return np.concatenate(rel)


def _same_side(cols: np.ndarray) -> np.ndarray:
    """Relations putting all ``cols`` on one side (a chain from the first)."""
    if cols.size < 2:
        return np.zeros((0, 3), dtype=np.int64)
    return np.stack([np.full(cols.size - 1, cols[0]), cols[1:], np.zeros(cols.size - 1, dtype=np.int64)], axis=1)


def _one_sided_rows(mask: np.ndarray, paired: np.ndarray, side_a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unpaired rows on the first half and on the second (empty rows fill whichever is short)."""
    on_a = np.any(mask & side_a, axis=1)
    on_b = np.any(mask & ~side_a, axis=1)
    lone = ~paired
    if np.any(lone & on_a & on_b):
        raise RouteUnavailable("not a two-sided B.P (sparse): a row on both halves has no partner")
    first, second = np.nonzero(lone & on_a)[0], np.nonzero(lone & on_b)[0]
    empty = np.nonzero(lone & ~on_a & ~on_b)[0]
    need = (first.size + second.size + empty.size) // 2 - first.size
    if need < 0 or need > empty.size:
        raise RouteUnavailable("not a two-sided B.P (sparse): the one-sided rows do not balance")
    return np.sort(np.concatenate([first, empty[:need]])), np.sort(np.concatenate([second, empty[need:]]))

def _half_problem(t: np.ndarray, pairs: np.ndarray, lone: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Rows: each determined pair projected onto its direction on ``cols``, then the lone rows."""
    x0, x1 = t[pairs[:, 0]][:, cols], t[pairs[:, 1]][:, cols]
    gram_a = np.sum(_sq(x0), axis=1)
    gram_d = np.sum(_sq(x1), axis=1)
    gram_c = np.sum(x0 * np.conj(x1), axis=1)
    d = _direction_from_gram(gram_a, gram_d, gram_c)
    proj = np.conj(d[:, 0, None]) * x0 + np.conj(d[:, 1, None]) * x1
    return np.ascontiguousarray(np.concatenate([proj, t[lone][:, cols]]))


def _merge(pairs: np.ndarray, lone: tuple[np.ndarray, np.ndarray], rows_a: np.ndarray, rows_b: np.ndarray,
           want: np.ndarray) -> np.ndarray:
    """The row order: position i holds the first half problem's row i and the second's aligned
    row; the two rows of a position go top/bottom as ``want`` asks (swapping them is free: it
    only swaps the rows of one 2x2 block), else the first pair member / first-half row on top."""
    npairs, h = pairs.shape[0], rows_a.size
    pos_a, pos_b = np.argsort(rows_a), np.argsort(rows_b)
    sigma = _aligning_automorphism(pos_a[:npairs], pos_b[:npairs], h)
    if sigma is None:
        raise RouteUnavailable("not a two-sided B.P (sparse): the half problems' row trees do not align")
    idx_a, idx_b = rows_a, rows_b[sigma]
    is_pair = idx_a < npairs
    if np.any(is_pair != (idx_b < npairs)) or np.any(idx_a[is_pair] != idx_b[is_pair]):
        raise RouteUnavailable("not a two-sided B.P (sparse): the half problems' row trees do not align")
    top, bottom = np.empty(h, dtype=np.int64), np.empty(h, dtype=np.int64)
    top[is_pair], bottom[is_pair] = pairs[idx_a[is_pair], 0], pairs[idx_a[is_pair], 1]
    top[~is_pair] = lone[0][idx_a[~is_pair] - npairs]
    bottom[~is_pair] = lone[1][idx_b[~is_pair] - npairs]
    swap = (want[top] >= h) | ((want[bottom] >= 0) & (want[bottom] < h))
    top[swap], bottom[swap] = bottom[swap], top[swap].copy()
    return np.concatenate([top, bottom]).astype(np.int64)


def _aligning_automorphism(a: np.ndarray, b: np.ndarray, h: int) -> np.ndarray | None:
    """``sigma`` (h,) with ``sigma[a] = b``: an automorphism of the row tree, or None.

    The row tree of a butterfly of size h splits on index bit 0 first, bit 1 next, ...; swapping
    the children of a node flips bit t for the rows with given bits below t. So ``sigma(i)`` flips
    bit t of i by ``s_t(i mod 2^t)``, and ``sigma(a) = b`` fixes ``s_t(a mod 2^t) = bit t of a ^ b``;
    links with equal low bits must agree. Free choices flip nothing (deterministic).
    """
    idx = np.arange(h)
    sigma = idx.copy()
    for bit in range(h.bit_length() - 1):
        low = (1 << bit) - 1
        need = ((a ^ b) >> bit) & 1
        table = np.zeros(1 << bit, dtype=np.int64)
        table[a & low] = need
        if np.any(table[a & low] != need):
            return None
        sigma ^= table[idx & low] << bit
    return sigma
