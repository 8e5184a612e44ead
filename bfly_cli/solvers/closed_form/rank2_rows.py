"""Both orders of a two-sided rank-2 chain, ``T = P_out Q P_in``, discovered from the matrix alone.

:mod:`.rank2_order` finds the column order of ``T = Q P`` (Q a real rank-2 chain: every block of
every split has rank <= 2) when the rows are in Q's order. With the rows shuffled too (a spectrum
in another bin order), its row sets ``b + 2^l c`` are unknown. What the structure says about rows:

* At split level l the rows fall into ``2^l`` *row sets* (``N / 2^l`` rows each, the rows with the
  same low l bits) and the columns into groups of ``2^l``; every (row set, group) block has rank
  <= 2. The row sets of level l are unions of two of level l + 1, so the rows form a tree, built
  here **bottom up** while the column classes are split **top down**, one level per step.
* Levels L-1 and 1 impose nothing (two rows, or two columns, always span <= 2 dimensions). The
  first real constraint on rows is at level L-2: the 4 rows of a *quadruple* restricted to each
  column quarter span only a plane. No pair of rows shows it, so the seed is a plane search:
  for a reference row, the rows in a plane through it (:func:`_plane_mates`).
* **Seed.** A quadruple is found on 3 columns (a fixed pseudo-random sequence of column triples
  through the reference's strongest column; one in 16 lies in one quarter), and its 4-vectors
  split the columns into classes (:func:`.rank2_order._split` on one position). A degenerate
  quadruple is coplanar under several partitions (DCT/DST at N = 32, 64), so several seeds are
  taken and their partitions tried, the best supported first; under the right one, every
  quadruple is a reference row's plane with exactly 3 more rows on each class (projected to a
  few random directions: a plane stays a plane), and the split of all quadruples certifies it.
* **Levels.** From then on a row set is a *position* carrying 2 slot coordinates per column
  class, as in :mod:`.rank2_order`; two positions are partners when their slots span the same
  plane on each sub-class. On 3 columns inside one sub-class that plane (its projector) is a
  per-position fingerprint, so the pairs are mutual nearest neighbours with a gap; the column
  triples are again tried in a fixed order, and a pairing is kept only when
  :func:`.rank2_order._split` certifies it on every class and position. Positions whose
  fingerprints coincide beyond a pair are paired in index order; positions that show only a
  line on every triple are paired in every way left, the certificate deciding.

Not covered: the Hartley transform at N >= 64 (N <= 16 works). Its rows k and k + N/2 are
parallel on both classes of level L-2, so any two such pairs form a valid quadruple there, and
the quadruples the lower levels continue are decided only one level down. (A prototype merging
the pairs and seeding one level down recovered 7 of 8 cases at N = 64, 256, but took 6-7 s at
N = 256: not kept.) The discovery then raises; it never returns a wrong order. The rank-2 route
does not get here for a Hartley matrix: its top stage is rank one, so :mod:`.branch_rows` reads
the row order off one rank-one branch first (and off ``T^T`` for a DCT-II or DST-II, whose
transposes have one); this search is for rank-2 chains with no rank-one branch on either side.

Every decision is a gap between members and non-members relative to the matrix's own noise floor
(:data:`.rank2_order._GAP` in energy), never a fixed zero tolerance. A matrix outside the class
(random, circulant) fails the seed: no column triple gives a reference plane holding exactly three
rows that also splits the columns into planes, and :class:`RouteUnavailable` is raised.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from ...factors import Step
from .. import RouteUnavailable
from .rank2_factor import factor_with_noise_floor
from .rank2_order import _FLOOR, _GAP, Levels, NoRankTwoOrder, _split

_SEED = 20261203
_SEED_TRIALS = 256  # column triples tried for the first quadruple (one in ~16 lies in one quarter)
_PAIR_TRIALS = 96  # column triples tried per level for the position fingerprints
_SEED_CANDIDATES = 12  # plane partners tried per reference row on a column triple (closest directions first)
_DIMS = 12  # random directions a column class is projected onto for the quadruple search
_COND = 0.05  # a perpendicular part below this fraction of its row has a direction of noise
_SEEDS = 12  # seed quadruples whose column partitions are ranked and tried
_LEFTOVER = 6  # unpaired positions whose pairings are all tried (15 ways at most)
_BATCH = 32  # column triples evaluated together in the seed search
_NEIGHBOURS = 8  # largest cluster of coinciding fingerprints resolved
_FIRST_REFS = 3  # strongest rows tried as the first seed before the matrix is rejected
_FALLBACK_N = 512  # largest N at which the fallback references are searched (their cost: see _seed_partitions)


def discover_rank2_two_sided(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, cols)`` (int64) such that ``matrix[rows][:, cols]`` has rank <= 2 blocks at every split.

    Raises :class:`RouteUnavailable` for a complex matrix and as soon as a level proves that no
    pair of orders exists (no seed quadruple, rows that do not form quadruples, positions that
    do not pair, or a class that is not coplanar).
    """
    if np.iscomplexobj(matrix):
        raise RouteUnavailable("the two-sided rank-2 discovery is for real matrices; this one is complex")
    mat = np.asarray(matrix, dtype=np.float64)
    n = mat.shape[0]
    if n <= 8:  # no level between 2 and L-2: every order is valid
        return np.arange(n, dtype=np.int64), np.arange(n, dtype=np.int64)
    state: dict[str, Any] = {"consistent": True, "strict": True, "levels": Levels()}
    quads = _quadruples(mat)
    vec = mat[quads.reshape(-1)].reshape(n // 4, 4, n).transpose(0, 2, 1)
    parts, cut = _certified_split(vec, n // 4, state, None)
    classes = [(members.astype(np.int64), coords, cut) for members, coords in parts]
    orders = []
    positions = n // 4
    while positions > 4:
        order, classes = _pair_level(classes, positions, state)
        orders.append(order)
        positions //= 2
    rows = _compose(quads, orders, n)
    cols = np.concatenate([c for c, _, _ in classes]).astype(np.int64)
    return rows, cols


def solve_rank2_two_sided(matrix: np.ndarray) -> tuple[list[Step], dict[str, Any]]:
    """Steps ``[P_in, rank2, P_out]`` for ``T = P_out Q P_in`` (structure ``PQP``), and the metadata.

    ``T[rows][:, cols]`` is factored by :mod:`.rank2_factor`; a permutation step does
    ``x <- x[perm]``, so the input order is ``cols`` and the output order ``argsort(rows)``
    (``(T x)[rows] = Q' x[cols]``).
    """
    rows, cols = discover_rank2_two_sided(matrix)
    fit = factor_with_noise_floor(np.asarray(matrix)[rows][:, cols])
    steps = [Step("permutation", cols), Step("rank2", fit.stages.astype(np.asarray(matrix).dtype)),
             Step("permutation", np.argsort(rows).astype(np.int64))]
    return steps, {"rank2_rows": "permuted", "rank2_noise_floor": fit.noise}


# ---- seed: quadruples of rows -------------------------------------------------------------------


def _quadruples(mat: np.ndarray) -> np.ndarray:
    """``(N/4, 4)`` rows: every quadruple spans a plane on each column class of level L-2.

    The classes come from seed quadruples (:func:`_seed_partitions`), most supported first;
    the first under which every row finds its quadruple wins.
    """
    failure = None
    for classes in _seed_partitions(mat):
        try:
            return _quadruples_on(mat, classes)
        except RouteUnavailable as exc:
            failure = failure or exc
    raise failure or RouteUnavailable("no rank-2 row order: no seed quadruple")


def _quadruples_on(mat: np.ndarray, classes: list[np.ndarray]) -> np.ndarray:
    """Quadruples under fixed column classes: references strongest first, each one's three mates
    searched among the rows not yet placed, on its strongest class first."""
    n = mat.shape[0]
    rng = np.random.default_rng(_SEED)
    proj = [mat[:, c] @ rng.standard_normal((c.size, min(c.size, _DIMS))) for c in classes]
    energy = np.einsum("ij,ij->i", mat, mat)
    free = np.ones(n, dtype=bool)
    quads = []
    for ref in np.argsort(-energy, kind="stable"):
        if not free[ref]:
            continue
        free[ref] = False
        pool = np.nonzero(free)[0]
        mates = next((m for m in _mate_candidates(proj, ref, pool)
                      if _coplanar(mat[np.concatenate([[ref], m])], classes)), None)
        if mates is None:
            raise RouteUnavailable(f"no rank-2 row order: row {ref} has no three rows sharing its planes")
        free[mates] = False
        quads.append(np.concatenate([[ref], mates]))
    return np.asarray(quads, dtype=np.int64)


def _mate_candidates(proj: list[np.ndarray], ref: int, pool: np.ndarray) -> Iterator[np.ndarray]:
    """Candidate sets of three rows of ``pool`` sharing ``ref``'s planes (the caller keeps the
    first that is coplanar with ref on every class).

    A class where ref's plane holds exactly three rows proposes them. A plane holding 7, 11, ...
    rows (several quadruples sharing their planes) narrows the choice; the rows common to all
    such planes are interchangeable and the three closest are proposed last. The last three
    rows are a quadruple by elimination (the final split certifies it).
    """
    if pool.size == 3:
        yield pool
        return
    common = np.ones(pool.size, dtype=bool)
    score = np.zeros(pool.size)
    seen = False
    for idx in np.argsort([-float(np.dot(p[ref], p[ref])) for p in proj], kind="stable"):
        x = proj[idx]
        if not np.dot(x[ref], x[ref]) > 0:
            continue
        found = _plane_mates(x[pool], x[ref])
        if found is None:
            continue
        mask, res = found
        if mask.sum() == 3:
            yield pool[mask]
        common &= mask
        score += res
        seen = True
    if seen and common.sum() >= 3:
        yield pool[np.sort(np.argsort(np.where(common, score, np.inf), kind="stable")[:3])]


def _seed_partitions(mat: np.ndarray) -> list[list[np.ndarray]]:
    """Candidate column classes of level L-2, each read off one seed quadruple, best supported first.

    A degenerate quadruple (the DCT's rows 0, 8, ..., 56 at N = 64 lie in one plane on every
    quarter) is coplanar under several partitions, so one seed is not enough: seeds are taken
    from the strongest row and then rows in a fixed pseudo-random order, and a partition is
    ranked by how many seeds are coplanar on all its classes (a generic quadruple is coplanar
    only under the true one). One of the :data:`_FIRST_REFS` strongest rows must seed (the
    strongest alone for N > :data:`_FALLBACK_N`): when none can, the matrix is rejected after
    those searches. Why fallbacks: the strongest row alone failed on 1 to 3 of 24 random
    ``Re(B)`` at N = 256 (rows or both sides shuffled; 0 of 24 with two fallbacks of 64 triples).
    Why only up to N = 512: every circulant and every unstructured matrix pays the fallbacks'
    searches before it is rejected, +50 % of this route's rejection (+0.1 s at N = 256 on a
    0.5 s clean circulant solve; +0.3 s at N = 1024 on 1.7 s), for a rare input (the named
    transforms seed on the first row or never get here).
    """
    n = mat.shape[0]
    energy = np.einsum("ij,ij->i", mat, mat)
    strongest = [int(r) for r in np.argsort(-energy, kind="stable")[:_FIRST_REFS if n <= _FALLBACK_N else 1]]
    refs = strongest + [int(r) for r in np.random.default_rng(_SEED + n).permutation(n) if r not in strongest]
    seeds = []
    for rank, ref in enumerate(refs[: 3 * _SEEDS]):
        # the fallbacks search a quarter of the triples each (one in ~16 lies in one quarter)
        found = _seed_partition(mat, ref, _SEED_TRIALS if rank == 0 or seeds else _SEED_TRIALS // 4)
        if not seeds and found is None and rank == len(strongest) - 1:
            raise RouteUnavailable(f"no rank-2 row order: no column triple puts any of the {len(strongest)} "
                                   "strongest rows in a plane with exactly three others that also splits the "
                                   "columns into planes")
        if found is not None:
            seeds.append(found)
        if len(seeds) == _SEEDS:
            break
    distinct = {tuple(np.unique(label, return_index=True)[1][label]): label for _, label in seeds}  # same split
    parts = [[np.nonzero(label == c)[0] for c in np.unique(label)] for label in distinct.values()]
    support = [sum(_coplanar(mat[quad], classes) for quad, _ in seeds) for classes in parts]
    rank = sorted(range(len(parts)), key=lambda i: (-support[i], -len(parts[i]), i))
    return [parts[i] for i in rank]


def _coplanar(rows: np.ndarray, classes: list[np.ndarray]) -> bool:
    """Whether ``rows (4, N)`` span at most a plane on every class (a gap of :data:`_GAP` in energy
    between the second and third singular values, or a third at rounding level)."""
    for cols in classes:
        sing = np.linalg.svd(rows[:, cols], compute_uv=False) ** 2
        if sing[2] > max(sing[1] / _GAP, _FLOOR * sing[0]):
            return False
    return True


def _seed_partition(mat: np.ndarray, ref: int, trials: int = _SEED_TRIALS) -> tuple[np.ndarray, np.ndarray] | None:
    """The quadruple of ``ref`` and a class label per column from its planes (None: no triple finds one).

    The quadruple is ref's plane on a column triple holding exactly three other rows; it is
    accepted only when its 4-vectors split every column into planes of multiples of N/4 columns
    (:func:`.rank2_order._split`, strict), which also proves the triple lay inside one class.
    """
    n = mat.shape[0]
    others = np.delete(np.arange(n), ref)
    j0 = int(np.argmax(np.abs(mat[ref])))
    rest = np.delete(np.arange(n), j0)
    pairs = np.asarray(_triples(rest.size)[:trials], dtype=np.int64).reshape(-1, 2)
    for start in range(0, pairs.shape[0], _BATCH):
        chunk = rest[pairs[start : start + _BATCH]]  # (B, 2) column pairs joining j0
        cols = np.concatenate([np.full((chunk.shape[0], 1), j0), chunk], axis=1)
        x = mat[:, cols].transpose(1, 0, 2)  # (B, N, 3)
        masks, res = _plane_mates_batch(x[:, others], x[:, ref], _SEED_CANDIDATES)
        for mask in masks[masks.sum(axis=1) == 3]:
            quad = np.concatenate([[ref], others[mask]])
            vec = mat[quad].T[None]  # one position, (1, N, 4)
            try:
                parts, _ = _split(vec, n // 4, {"consistent": True, "strict": True, "levels": Levels()}, None)
            except NoRankTwoOrder:
                continue
            label = np.empty(n, dtype=np.int64)
            for idx, (members, _) in enumerate(parts):
                label[members] = idx
            return quad, label
    return None


def _triples(count: int) -> list[tuple[int, int]]:
    """A fixed pseudo-random sequence of distinct index pairs ``(a, b)``, ``a < b < count``."""
    rng = np.random.default_rng(_SEED + count)
    total = count * (count - 1) // 2
    if total <= _SEED_TRIALS:
        a, b = np.triu_indices(count, 1)
        pick = rng.permutation(total)
        return list(zip(a[pick].tolist(), b[pick].tolist()))
    out: list[tuple[int, int]] = []
    seen: set[tuple[int, int]] = set()
    while len(out) < _SEED_TRIALS:
        a, b = sorted(rng.choice(count, 2, replace=False).tolist())
        if (a, b) not in seen:
            seen.add((a, b))
            out.append((a, b))
    return out


def _plane_mates(x: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """:func:`_plane_mates_batch` for one problem: the mask and residuals, or None."""
    masks, res = _plane_mates_batch(x[None], ref[None])
    return (masks[0], res[0]) if masks[0].any() else None


def _plane_mates_batch(x: np.ndarray, ref: np.ndarray, tries: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``x (B, M, d)`` in one plane with ``ref (B, d)`` (masks with 3, 7, ... rows; none
    where no plane qualifies), and their residuals ``(B, M)``.

    Every row's part perpendicular to ``ref`` is taken; the mates' parts are parallel (the plane
    meets ref's complement in a line), so their directions coincide. Candidates for that line
    are the ``tries`` closest directions on a random 1-D projection (sign-free); for each, the relative
    energy off span(ref, line) is computed for every row and the members are the rows below the
    largest gap (at least :data:`_GAP`). Rows parallel to ref lie in every such plane; the line
    of ref itself (no plane: a rank-1 block) is the first candidate. The first candidate whose
    plane holds 3 mod 4 rows wins.
    """
    count, rows, dims = x.shape
    energy = np.einsum("bmd,bmd->bm", x, x)
    energy = np.where(energy > 0, energy, np.inf)
    q1 = ref / np.maximum(np.linalg.norm(ref, axis=1), np.finfo(np.float64).tiny)[:, None]
    perp = x - np.einsum("bmd,bd->bm", x, q1)[..., None] * q1[:, None, :]
    pe = np.einsum("bmd,bmd->bm", perp, perp)
    strong = pe > _COND**2 * energy
    g1, g2 = np.random.default_rng(_SEED + dims).standard_normal((2, dims))
    u = perp / np.sqrt(np.where(pe > 0, pe, 1.0))[..., None]
    key = np.where(strong, (u @ g2) * np.where(u @ g1 >= 0, 1.0, -1.0), np.inf)  # sign-free
    srt = np.argsort(key, axis=1, kind="stable")
    with np.errstate(invalid="ignore"):  # inf - inf between two weak rows: not a candidate
        gaps = np.diff(np.take_along_axis(key, srt, axis=1), axis=1)
    gaps = np.where(np.isfinite(gaps), gaps, np.inf)
    close = np.argsort(gaps, axis=1, kind="stable")[:, :tries]
    usable = np.isfinite(np.take_along_axis(gaps, close, axis=1))
    cand = np.take_along_axis(srt, close, axis=1)  # (B, K)
    q2 = np.take_along_axis(u, cand[..., None], axis=1)  # (B, K, d)
    along = np.einsum("bkd,bmd->bkm", q2, perp)
    res = np.concatenate([(pe / energy)[:, None], np.maximum(pe[:, None] - along**2, 0.0) / energy[:, None]], axis=1)
    members = _below_gap(res)  # (B, K + 1, M)
    sizes = members.sum(axis=2)
    valid = (sizes % 4 == 3) & np.concatenate([np.ones((count, 1), dtype=bool), usable], axis=1)
    first = np.argmax(valid, axis=1)
    pick = np.arange(count)
    masks = members[pick, first] & valid[pick, first][:, None]
    return masks, res[pick, first]


def _below_gap(res: np.ndarray) -> np.ndarray:
    """Members along the last axis: residuals below the largest gap on a log scale, where that
    gap is at least :data:`_GAP` (no members otherwise)."""
    val = np.clip(res, _FLOOR, 1.0)
    srt = np.sort(val, axis=-1)
    ratio = srt[..., 1:] / srt[..., :-1]
    at = np.argmax(ratio, axis=-1)[..., None]
    cut = np.take_along_axis(srt, at, axis=-1)
    ok = np.take_along_axis(ratio, at, axis=-1) >= _GAP
    return (val <= cut) & ok


# ---- levels: pairing positions ------------------------------------------------------------------


Classes = list[tuple[np.ndarray, np.ndarray, Any]]


def _pair_level(classes: Classes, positions: int, state: dict[str, Any]) -> tuple[np.ndarray, Classes]:
    """Pair the ``positions`` row sets (``[tops, bottoms]`` order) and split every class under it.

    Each column triple inside one sub-class yields a pairing of the positions whose slots show
    a plane there (:func:`_fingerprint_pairs`); triples across sub-classes yield none, or, in
    structured matrices, a different pairing. Every distinct pairing is certified when first
    seen (its few line-like positions completed in every way, :func:`_complete`), and the
    certificate, the split of every class, decides.
    """
    by_size = sorted(range(len(classes)), key=lambda i: (-classes[i][0].size, i))
    rng = np.random.default_rng(_SEED + positions)
    tried: set[bytes] = set()
    for trial in range(_PAIR_TRIALS):
        slots = classes[by_size[trial % len(by_size)]][1]
        cols = np.sort(rng.choice(slots.shape[1], 3, replace=False))
        found = _fingerprint_pairs(slots[:, cols, :], state)
        if found is None or found.tobytes() in tried:
            continue
        tried.add(found.tobytes())
        for filled in _complete(found):
            done = _certify(classes, filled, state)
            if done is not None:
                return done
    raise RouteUnavailable(f"no rank-2 row order: the {positions} row sets do not pair up on any column triple")


def _certify(classes: Classes, mate: np.ndarray, state: dict[str, Any]) -> tuple[np.ndarray, Classes] | None:
    """The ``[tops, bottoms]`` order and the split classes when every class splits under ``mate``."""
    order = _tops_bottoms(mate)
    trial_state = dict(state)
    try:
        new = _split_all(classes, order, trial_state)
    except NoRankTwoOrder:
        return None
    state.update(trial_state)
    return order, new


def _complete(mate: np.ndarray) -> list[np.ndarray]:
    """Every way of pairing the positions left unpaired (at most :data:`_LEFTOVER` of them).

    They are positions whose slots span only a line on every triple tried (the DCT's rows 0, 16,
    32, 48 at N = 64): two lines always span a plane, so which of them pair is decided by the
    certificate of the next split, not by a fingerprint.
    """
    left = np.nonzero(mate < 0)[0]
    if left.size % 2 or left.size > _LEFTOVER:
        return []
    out = []
    for pairs in _pairings(left.tolist()):
        filled = mate.copy()
        for a, b in pairs:
            filled[a], filled[b] = b, a
        out.append(filled)
    return out


def _pairings(items: list[int]) -> list[list[tuple[int, int]]]:
    """All perfect matchings of ``items`` (in a fixed order)."""
    if not items:
        return [[]]
    first, rest = items[0], items[1:]
    return [[(first, other)] + tail for k, other in enumerate(rest) for tail in _pairings(rest[:k] + rest[k + 1:])]


def _fingerprint_pairs(slots: np.ndarray, state: dict[str, Any]) -> np.ndarray | None:
    """Partner of each position (-1: undecided) from the planes of its slots on 3 columns.

    ``slots (P, 3, 2)``. A position's plane is the span of its two slot vectors; its projector
    (gauge-free) is the fingerprint. Positions whose fingerprints coincide form groups (their
    nearest neighbours up to the largest gap, at least sqrt(:data:`_GAP`) in distance); a group
    that every member agrees on and of even size is paired in index order. None when under half
    of the positions are paired (the triple crossed sub-classes).
    """
    from scipy.spatial import cKDTree

    count = slots.shape[0]
    u, sing, _ = np.linalg.svd(slots, full_matrices=False)
    floor = max(float(state["levels"].inside), _FLOOR)
    good = np.nonzero(sing[:, 1] ** 2 > _GAP * floor * sing[:, 0] ** 2)[0]
    if good.size < 3:
        return None
    proj = np.einsum("pia,pja->pij", u[good], u[good]).reshape(good.size, -1)
    dist, near = cKDTree(proj).query(proj, k=min(_NEIGHBOURS + 1, good.size))
    groups = [_group(dist[i], near[i]) for i in range(good.size)]
    mate = np.full(count, -1)
    for i, grp in enumerate(groups):
        if grp is None or len(grp) % 2 or i != min(grp) or any(groups[j] != grp for j in grp):
            continue
        idx = good[sorted(grp)]
        mate[idx[0::2]], mate[idx[1::2]] = idx[1::2], idx[0::2]
    if np.sum(mate >= 0) * 2 < count:
        return None
    return mate


def _group(dist: np.ndarray, near: np.ndarray) -> frozenset[int] | None:
    """The group of coinciding fingerprints of one position (itself included), or None.

    ``dist``, ``near``: its nearest neighbours, itself first. The group ends at the largest gap
    (ratio >= sqrt(_GAP)) of the neighbours' distances, clipped below at sqrt(_FLOOR) of the
    farthest so that exact coincidences (distance 0) compare as rounding.
    """
    if dist.size < 3:
        return None
    d = np.maximum(dist[1:], max(float(dist[-1]) * np.sqrt(_FLOOR), np.finfo(np.float64).tiny))
    ratio = d[1:] / d[:-1]
    at = int(np.argmax(ratio))
    if ratio[at] < np.sqrt(_GAP):
        return None
    return frozenset(near[: at + 2].tolist())


def _tops_bottoms(mate: np.ndarray) -> np.ndarray:
    """``[tops, bottoms]``: each pair with its smaller index first, pairs in index order."""
    tops = np.array([p for p in range(mate.size) if p < mate[p]], dtype=np.int64)
    return np.concatenate([tops, mate[tops]]).astype(np.int64)


def _split_all(classes: Classes, order: np.ndarray, state: dict[str, Any]) -> Classes:
    """Every class split with its positions paired as ``order`` (raises NoRankTwoOrder)."""
    half = order.size // 2
    out: Classes = []
    for cols, slots, cut in classes:
        paired = slots[order]
        vec = np.concatenate([paired[:half], paired[half:]], axis=2)
        parts, node_cut = _split(vec, half, state, cut)
        out.extend((cols[members], coords, node_cut) for members, coords in parts)
    return out


def _certified_split(vec: np.ndarray, unit: int, state: dict[str, Any], cut: float | None) -> tuple[list, float | None]:
    """:func:`.rank2_order._split` in strict mode, as a :class:`RouteUnavailable`."""
    try:
        return _split(vec, unit, state, cut)
    except NoRankTwoOrder as exc:
        raise RouteUnavailable(f"no rank-2 row order: {exc}") from None


def _compose(quads: np.ndarray, orders: list[np.ndarray], n: int) -> np.ndarray:
    """Row order from the quadruples and each level's ``[tops, bottoms]`` order of its positions.

    A position of a level with P positions is the row set ``c mod P``; the pair ``(order[x],
    order[x + P/2])`` becomes position x of the next level, so its members get residues
    ``res(x)`` and ``res(x) + P/2``. Quadruple q's rows are ``res(q) + t N/4``.
    """
    res = np.arange(quads.shape[0] >> len(orders))
    for order in reversed(orders):
        half = order.size // 2
        old = np.empty(order.size, dtype=np.int64)
        old[order] = np.concatenate([res, res + half])
        res = old
    rows = np.empty(n, dtype=np.int64)
    quarter = n // 4
    for t in range(4):
        rows[res + t * quarter] = quads[:, t]
    return rows
