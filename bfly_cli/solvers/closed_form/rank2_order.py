"""Discovering a column order under which every block of every split has rank <= 2.

Under a valid order, the group of ``2^l`` consecutive columns that a level-l split keeps
together must, on each of its row sets (rows ``b + 2^l c``, ``b`` fixed), span at most a plane.
Two facts make the search a top-down tree with no backtracking:

* **Classes instead of groups.** Several groups may share their planes (Hartley: columns ``n``
  and ``-n`` lie in the same plane at *every* level; two line-like groups span one plane). Such
  groups cannot be told apart at their level, and need not be: the search keeps *classes*, the
  maximal sets of columns that share planes, whose sizes are multiples of the group size. Classes
  of level ``l - 1`` are found inside each class of level ``l`` (coplanar on a finer row set
  implies coplanar on its halves), and the final order lists every class contiguously inside its
  parent (depth-first). Cutting that order into chunks of ``2^l`` then keeps every chunk inside
  one level-l class, at every level at once, so the order is valid whatever the multiplicities.
* **Slots.** A class's columns, restricted to a row set, lie in one plane; projecting onto it
  (2 coordinates, the "slots") loses nothing but noise. A class at level ``l`` is therefore a
  small problem ``(2^l positions, 2 slots, columns)``, and its sub-classes are coplanar groups of
  the 4-vectors ``(positions c, c + 2^(l-1)) x (2 slots)``. Every level touches O(N^2) numbers.

Finding one class: the reference column (largest energy, ties by index) and a partner span a
plane per position; every column gets its relative energy off that plane. A matrix that reached
us rounded, stored in float32 or measured is only *near* a rank-2 structure, so membership is not
"residual below a constant": members sit at the matrix's noise floor (``eps^2``), the others at
O(1), and the class is everything below the **largest gap of the sorted residuals on a log
scale**, provided that gap is at least :data:`_GAP` (the margin). With no such gap a row is all
members (when every residual is below the cut inherited from the parent node, the noise floor
seen so far) or none. Positions where the reference or the partner's perpendicular part is weak
(below :data:`_COND` of its RMS over the positions) define no plane: their direction would be
rounding or noise (a Hartley column that is zero at a row in exact arithmetic is 1e-16 there).
Partners are tried in a fixed pseudo-random order, screened on a few positions, and the first
whose plane holds a valid number of columns (a positive multiple of the group size) on the screen
*and* on the decision sample wins. A plane through two noisy columns is tilted by their noise
relative to *their* size; when no partner of a batch gives a valid count, the planes with the
widest gap at a valid count are **refitted** from the columns below it (their least-squares
plane, :func:`_refit`), whose residuals are the noise relative to the whole class: at eps = 1e-3
this lifts a random ``Re(B)``'s gap from 24 to 2000. Levels 0 and 1 impose nothing (a pair of
columns always has rank <= 2), so the recursion stops at classes of level 2.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

_FLOOR = 1e-14  # relative residuals are differences of energies: below this they are float64 rounding
_GAP = 100.0  # members and non-members must differ by this factor in residual (2 decades of margin)
_COND = 0.05  # a position defines a plane where its weaker direction reaches this fraction of its RMS
_SCREEN = 16  # positions used to screen candidate partners
_SAMPLE = 64  # positions that decide membership (the projection then certifies all of them)
_BATCHES = (4, 8, 16, 32, 64)  # partners tried per round; their sum caps the search per class
_SEED = 20240611
_LOOSE = 1.5  # a gap this wide at a valid count is worth refitting the plane from its columns
_REFIT_ROUNDS = 3  # refits of one plane, each from the columns below the previous one's widest gap
_REFITS = 2  # planes per partner batch refitted from their own columns when none was valid
_SCREEN_GAP = 10.0  # a refitted plane's margin on the screen (16 positions): it only proposes


class NoRankTwoOrder(ValueError):
    """Strict discovery only: a class search failed on every position, so no column order makes
    every block rank <= 2 up to the matrix's noise floor."""


@dataclass
class Discovery:
    """The order found, whether every class had a valid size (False: best effort only), and the
    residual levels that decided it: ``inside`` the largest member's relative off-plane energy
    (the noise floor as the discovery saw it, at least :data:`_FLOOR`), ``outside`` the smallest
    non-member's (inf when no column was ever left out)."""

    perm: np.ndarray
    consistent: bool
    inside: float = _FLOOR
    outside: float = np.inf


@dataclass(frozen=True)
class Levels:
    """Residual levels of a set of decisions: the largest member and the smallest non-member."""

    inside: float = 0.0
    outside: float = np.inf

    def merged(self, other: "Levels") -> "Levels":
        return Levels(max(self.inside, other.inside), min(self.outside, other.outside))

    def cut(self, inherited: float | None) -> float | None:
        """The geometric middle of the gap, or ``inherited`` when no column was left out."""
        if not np.isfinite(self.outside):
            return inherited
        return float(np.sqrt(max(self.inside, _FLOOR) * self.outside))


def discover_plane_permutation(matrix: np.ndarray, strict: bool = False) -> Discovery:
    """Order (int64 ``perm``) such that ``matrix[:, perm]`` has rank-2 blocks when possible.

    ``strict`` raises :class:`NoRankTwoOrder` at the first class that has no valid size on all
    positions instead of completing a best-effort order: a caller that only wants exact orders
    (``--solver auto``) then pays for one class search, not the whole tree, on matrices such
    as circulants that have no rank-2 order.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    n = matrix.shape[0]
    state = {"consistent": True, "strict": strict, "levels": Levels()}
    if n <= 4:
        return Discovery(np.arange(n, dtype=np.int64), True)
    # The whole matrix is one class of level L with an empty second slot; its only class of
    # level L-1 holds every column (a 2 x N block always has rank <= 2), with rows c and c + N/2
    # as the two slots, so the search starts there.
    slots = np.ascontiguousarray(matrix.reshape(2, n // 2, n).transpose(1, 2, 0))
    order = _descend(slots, np.arange(n), state, None)
    levels = state["levels"]
    return Discovery(np.asarray(order, dtype=np.int64), state["consistent"], max(levels.inside, _FLOOR),
                     levels.outside)


def _descend(slots: np.ndarray, cols: np.ndarray, state: dict, cut: float | None) -> list[int]:
    """Depth-first order of one class ``(P positions, k columns, 2 slots)``; leaves at P <= 4.

    ``cut`` is the residual level that separated members from non-members at the parent node:
    the sub-classes' members sit at the same noise floor, so a node whose columns all lie below
    it is one class even though it shows no gap of its own.
    """
    positions = slots.shape[0]
    if positions <= 4:
        return cols.tolist()
    vec = np.concatenate([slots[: positions // 2], slots[positions // 2 :]], axis=2)  # (P/2, k, 4)
    order: list[int] = []
    parts, node_cut = _split(vec, positions // 2, state, cut)
    for members, coords in parts:
        order.extend(_descend(coords, cols[members], state, node_cut))
    return order


def _split(vec: np.ndarray, unit: int, state: dict,
           cut: float | None) -> tuple[list[tuple[np.ndarray, np.ndarray]], float | None]:
    """The classes of ``vec (B, k, 4)`` with their slot coordinates ``(B, size, 2)``, and the cut.

    Membership is decided on a fixed sample of positions (cheap) and certified on all of them
    by the projection, which needs each class's 4x4 Gram matrices anyway: the class's energy
    off its plane must stay below the cut between members and non-members (the geometric middle
    of the gap between the noise floor and the structure). A failed certificate repeats the
    search on every position before the node is declared inconsistent.
    """
    sample = _sample_positions(vec.shape[0], _SAMPLE)
    attempts = [sample, None] if sample.size < vec.shape[0] else [None]
    for positions in attempts:
        trial = dict(state)
        try:
            classes, levels = _classes(vec if positions is None else vec[positions], unit, trial, cut)
        except NoRankTwoOrder:
            if positions is None:
                raise
            continue  # the sample may be misleading: strict mode decides on every position
        node_cut = levels.cut(cut)
        limit = _GAP * _FLOOR if node_cut is None else node_cut
        parts = [_project(vec[:, members]) for members in classes]
        coplanar = all(off <= limit for _, off in parts)
        if trial["consistent"] and coplanar or positions is None:
            state["consistent"] = trial["consistent"] and coplanar
            state["levels"] = trial["levels"].merged(levels)
            if state["strict"] and not state["consistent"]:
                raise NoRankTwoOrder(f"with groups of {unit} columns, a class is not coplanar on every position")
            return [(members, coords) for members, (coords, _) in zip(classes, parts)], node_cut
    raise AssertionError("unreachable: the last attempt uses every position")


def _project(vec: np.ndarray) -> tuple[np.ndarray, float]:
    """Coordinates ``(B, k, 2)`` of each position's 4-vectors in their dominant plane (the least
    squares projection onto the structure), and the fraction of the columns' energy off it.

    The top two eigenvectors of the 4x4 Gram matrix capture every column of a true class up to
    the noise; a line-like position gets a second slot of noise, which later residuals treat
    like any other noise. The two discarded eigenvalues are the energy off the plane.
    """
    gram = vec.transpose(0, 2, 1) @ vec
    vals, vecs = np.linalg.eigh(gram)
    total = float(np.sum(vals))
    off = float(np.sum(np.maximum(vals[:, :2], 0.0))) / total if total > 0 else 0.0
    return vec @ vecs[:, :, :1:-1], off  # strongest direction first: slot 0


def _decide(res: np.ndarray, cut: float | None, rows: np.ndarray, cols: np.ndarray,
            gap: float = _GAP) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Members ``(C, k)`` of each row of relative residuals, and the rows' member/non-member levels.

    A row's members are the residuals below its largest gap on a log scale when that gap is at
    least ``gap`` (:data:`_GAP`); otherwise the row is all members if every residual is below
    ``cut`` (the parent's cut; at the root, where nothing is known yet, the rounding floor), else none. A
    residual that could not be measured (no position defined the plane) counts as off-plane.
    ``res[rows, cols]`` are each plane's own columns: in it by construction, they are given the
    row's smallest other residual, so they join the lowest cluster without opening a gap.
    """
    res = np.clip(res, _FLOOR, 1.0)  # relative residuals are <= 1; inf (undefined) becomes 1
    res[rows, cols] = np.inf
    low = np.min(res, axis=1)
    res[rows, cols] = np.where(np.isfinite(low), low, _FLOOR)[rows]
    srt = np.sort(res, axis=1)
    count_rows, k = srt.shape
    idx = np.arange(count_rows)
    ceiling = _GAP * _FLOOR if cut is None else cut
    count = np.where(srt[:, -1] <= ceiling, k, 0)
    if k > 1:
        ratio = srt[:, 1:] / srt[:, :-1]
        at = np.argmax(ratio, axis=1)
        count = np.where(ratio[idx, at] >= gap, at + 1, count)
    level_in = np.where(count > 0, srt[idx, np.maximum(count - 1, 0)], 0.0)
    level_out = np.where(count < k, srt[idx, np.minimum(count, k - 1)], np.inf)
    inside = res <= np.where(count > 0, level_in, -1.0)[:, None]
    return inside, level_in, level_out


def _classes(vec: np.ndarray, unit: int, state: dict, cut: float | None) -> tuple[list[np.ndarray], Levels]:
    """Partition the columns of ``vec (B, k, 4)`` into coplanar classes of ``unit``-multiple size.

    Each class is searched with the cut of the classes found before it at this node (or the
    parent's): the last class, whose columns all lie in one plane, shows no gap of its own.
    """
    energy = np.einsum("bjp,bjp->bj", vec, vec)
    remaining = np.arange(vec.shape[1])
    found = []
    levels = Levels()
    while remaining.size:
        members, seen = _one_class(vec, energy, remaining, unit, state, levels.cut(cut))
        found.append(members)
        levels = levels.merged(seen)
        remaining = remaining[~np.isin(remaining, members, assume_unique=True)]
    return found, levels


def _one_class(vec: np.ndarray, energy: np.ndarray, remaining: np.ndarray, unit: int, state: dict,
               cut: float | None) -> tuple[np.ndarray, Levels]:
    """Column indices of the class of the reference column among ``remaining``, and its levels."""
    k = remaining.size
    if k <= unit:
        return remaining, Levels()
    ref = int(remaining[np.argmax(energy[:, remaining].sum(axis=0))])
    others = remaining[remaining != ref]
    partners = others[_shuffle(others.size)]
    screen = _screen_positions(vec.shape[0])
    whole = screen.size == vec.shape[0]  # the screen is every position: no separate verification
    sub = vec[screen][:, remaining]
    local = np.full(vec.shape[1], -1)
    local[remaining] = np.arange(k)
    best = (-1, int(partners[0]))
    floor = k  # fewest columns in a screened plane that is defined (a line class fits in each)
    start = 0
    for size in _BATCHES if state["consistent"] else _BATCHES[:1]:
        batch = partners[start : start + size]
        start += size
        if batch.size == 0:
            break
        res = _residuals(sub, energy[screen][:, remaining], sub[:, local[ref]], vec[screen][:, batch])
        count = np.arange(batch.size)
        inside, level_in, level_out = _decide(res, cut, np.concatenate([count, count]),
                                              np.concatenate([np.full(batch.size, local[ref]), local[batch]]))
        inside[:, local[ref]] = True  # the plane's own columns, even in a row with no members
        inside[count, local[batch]] = True
        counts = np.sum(inside, axis=1)
        floor = min(floor, int(np.min(counts, initial=k, where=counts > 0)))
        for idx in np.argsort(-counts, kind="stable"):
            if counts[idx] > best[0]:
                best = (int(counts[idx]), int(batch[idx]))
            if not _valid(int(counts[idx]), unit):
                continue
            if whole:
                return remaining[inside[idx]], Levels(float(level_in[idx]), float(level_out[idx]))
            members, seen = _members(vec, energy, remaining, ref, int(batch[idx]), cut, unit)
            if _valid(members.size, unit):
                return members, seen
        for idx in _refit_rows(res, unit):
            refit = _refit(sub, energy[screen][:, remaining], res[idx], unit, cut, _GAP if whole else _SCREEN_GAP)
            if refit is None:
                continue
            inside_row, seen = refit
            if whole:
                return remaining[inside_row], seen
            members, seen = _members_from(vec, energy, remaining, remaining[inside_row], cut, unit)
            if _valid(members.size, unit):
                return members, seen
    if state["strict"] and floor < unit:
        # A line class lies in every defined screened plane, so it has at most ``floor``
        # columns: too few to be a class, and the line test over every position is skipped.
        raise NoRankTwoOrder(f"with groups of {unit} columns, column {ref}'s plane holds at most {max(best[0], 1)} "
                             f"of {k} columns on the screen (a class needs a positive multiple of {unit})")
    line, seen = _members(vec, energy, remaining, ref, None, cut)
    if _valid(line.size, unit):  # no plane: the reference's line is its class (partners were parallel)
        return line, seen
    if state["strict"]:
        raise NoRankTwoOrder(f"with groups of {unit} columns, column {ref}'s plane holds at most {max(best[0], 1)} "
                             f"of {k} columns on the screen (a class needs a positive multiple of {unit})")
    state["consistent"] = False
    res = _full_residual(vec, energy, remaining, ref, best[1])
    return remaining[np.argsort(res, kind="stable")[:unit]], Levels()


def _members(vec: np.ndarray, energy: np.ndarray, remaining: np.ndarray, ref: int, partner: int | None,
             cut: float | None, unit: int | None = None) -> tuple[np.ndarray, Levels]:
    """The remaining columns in span(ref, partner) at every position (both included), decided by
    the gap; with no partner, those parallel to ref (its line). With ``unit``, a plane whose
    count is not a multiple of it is refitted from its own columns (:func:`_refit`) once."""
    res = _full_residual(vec, energy, remaining, ref, partner)
    own = np.nonzero((remaining == ref) | (remaining == partner))[0]
    inside, level_in, level_out = _decide(res[None], cut, np.zeros_like(own), own)
    inside = inside[0]
    inside[own] = True
    if unit is not None and partner is not None and not _valid(int(np.sum(inside)), unit):
        res[own] = 0.0
        refit = _refit(vec[:, remaining], energy[:, remaining], res, unit, cut)
        if refit is not None:
            return remaining[refit[0]], refit[1]
    return remaining[inside], Levels(float(level_in[0]), float(level_out[0]))


def _members_from(vec: np.ndarray, energy: np.ndarray, remaining: np.ndarray, seed: np.ndarray,
                  cut: float | None, unit: int) -> tuple[np.ndarray, Levels]:
    """The remaining columns in the plane fitted to the ``seed`` columns at every position
    (the screen's refitted class), decided by the gap (no members when it has none)."""
    res = _fitted_residual(vec[:, remaining], energy[:, remaining], np.isin(remaining, seed))
    inside, level_in, level_out = _decide(res[None], cut, _NONE, _NONE)
    return remaining[inside[0]], Levels(float(level_in[0]), float(level_out[0]))


_NONE = np.zeros(0, dtype=np.int64)


def _refit_rows(res: np.ndarray, unit: int) -> np.ndarray:
    """Rows of ``res (C, k)`` worth a refit: the :data:`_REFITS` whose widest gap at a valid
    count is largest, when that gap reaches :data:`_LOOSE`."""
    k = res.shape[1]
    counts = np.arange(unit, k, unit)
    if counts.size == 0:
        return _NONE
    ratio = np.max(_valid_gaps(np.sort(np.clip(res, _FLOOR, 1.0), axis=1), counts), axis=1)
    rows = np.argsort(-ratio, kind="stable")[:_REFITS]
    return rows[ratio[rows] >= _LOOSE]


def _valid_gaps(srt: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Ratios of sorted residuals ``srt (..., k)`` across each cut that leaves a valid count below it."""
    return srt[..., counts] / srt[..., counts - 1]


def _refit(vec: np.ndarray, energy: np.ndarray, res: np.ndarray, unit: int, cut: float | None,
           gap: float = _GAP) -> tuple[np.ndarray, Levels] | None:
    """Members (a mask over the ``k`` columns of ``vec (B, k, 4)``) of the plane refitted from the
    columns below the widest gap at a valid count of ``res (k,)`` (again from the refitted
    residuals, up to :data:`_REFIT_ROUNDS` times: a seed that is mostly members fits a plane
    closer to the class, whose residuals then separate it better); None unless the refitted
    residuals show a ``gap`` at a valid count (:data:`_SCREEN_GAP` on the screen, whose 16
    positions leave a weak member and a non-member nearly in the plane closer together: the
    decision on every position that follows asks the full :data:`_GAP`).

    Why: a plane through two noisy columns is off by their noise relative to *their* size, and
    at a position where either is weak that tilt puts every strong member far above the noise
    floor (random ``Re(B)`` at eps = 1e-3: members up to 4e-3, non-members from 8e-2, a gap of
    24 where :data:`_GAP` asks 100). The plane fitted to all the candidate members (the top two
    directions of their Gram matrix, the least-squares plane) is off by the noise relative to
    the whole class, and the same members then sit 2000x below the non-members.
    """
    k = res.size
    counts = np.arange(unit, k, unit)
    if counts.size == 0:
        return None
    for attempt in range(_REFIT_ROUNDS):
        clipped = np.clip(res, _FLOOR, 1.0)
        order = np.argsort(clipped, kind="stable")
        srt = clipped[order]
        at = int(counts[np.argmax(_valid_gaps(srt, counts))])
        if attempt == 0 and srt[at] < _LOOSE * srt[at - 1]:
            return None
        res = _fitted_residual(vec, energy, np.isin(np.arange(k), order[:at]))
        inside, level_in, level_out = _decide(res[None], cut, _NONE, _NONE, gap)
        if _valid(int(np.sum(inside[0])), unit):
            return inside[0], Levels(float(level_in[0]), float(level_out[0]))
    return None


def _fitted_residual(vec: np.ndarray, energy: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """Energy ``(k,)`` of every column of ``vec (B, k, 4)`` off the least-squares plane of the
    ``seed`` columns (a mask) at each position (the top two eigenvectors of their Gram matrix),
    relative to the *average* column's energy, not each column's own.

    Why not each column's own: off a plane fitted to the whole class, a member's off-plane energy
    is the noise, the same for a weak column as for a strong one, while its own energy may be
    1000x below the average (random ``Re(B)`` entries are heavy-tailed), which would lift a weak
    member's relative residual next to the non-members'. Against the average the members form
    one cluster at the noise floor; a non-member weak enough to reach it costs no more than the
    noise wherever it goes.
    """
    part = vec[:, seed]
    _, vecs = np.linalg.eigh(part.transpose(0, 2, 1) @ part)
    along = vec @ vecs[:, :, 2:]  # (B, k, 2)
    off = np.maximum(energy - np.einsum("bjs,bjs->bj", along, along), 0.0)
    den = np.mean(np.sum(energy, axis=0))
    return np.sum(off, axis=0) / den if den > 0 else np.full(vec.shape[1], np.inf)


def _full_residual(vec: np.ndarray, energy: np.ndarray, remaining: np.ndarray, ref: int, partner: int | None) -> np.ndarray:
    """Residual of the remaining columns off span(ref, partner) (or ref's line), all positions."""
    if partner is None:
        return _line_residual(vec, energy, vec[:, ref])[remaining]
    return _residuals(vec, energy, vec[:, ref], vec[:, [partner]])[0][remaining]


def _line_residual(vec: np.ndarray, energy: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Relative energy ``(k,)`` off the line of ``a (B, 4)``, over the positions where a is strong."""
    a_norm = np.linalg.norm(a, axis=1)
    ok = a_norm > _COND * np.sqrt(np.mean(a_norm**2))
    q1 = a[ok] / a_norm[ok, None]
    along = np.squeeze(vec[ok] @ q1[:, :, None], axis=2)  # (B_ok, k)
    num = np.sum(np.maximum(energy[ok] - along**2, 0.0), axis=0)
    den = np.sum(energy[ok], axis=0)
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.inf)


def _valid(count: int, unit: int) -> bool:
    return count >= unit and count % unit == 0


def _screen_positions(count: int) -> np.ndarray:
    """Positions on which candidate partners are screened."""
    return _sample_positions(count, _SCREEN)


@lru_cache(maxsize=None)
def _sample_positions(count: int, size: int) -> np.ndarray:
    """A fixed spread of at most ``size`` positions (pseudo-random, so not all share low bits)."""
    if count <= size:
        return np.arange(count)
    return np.sort(np.random.default_rng(_SEED + count).choice(count, size, replace=False))


@lru_cache(maxsize=None)
def _shuffle(count: int) -> np.ndarray:
    """The fixed pseudo-random order in which partners are tried (cached: one per size)."""
    return np.random.default_rng(_SEED + count + 1).permutation(count)


def _residuals(vec: np.ndarray, energy: np.ndarray, a: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Relative off-plane energy ``(C, k)`` of every column of ``vec (B, k, 4)``, per plane.

    Plane ``i`` at each position is span(a, c[:, i]) (``a (B, 4)``, ``c (B, C, 4)``),
    orthonormalized by Gram-Schmidt; positions where ``a`` or the part of ``c`` perpendicular to
    it is weak (below :data:`_COND` of that plane's RMS over the positions) do not define a plane:
    their direction is rounding or noise, so they are left out of both the residual and the
    energy.
    The component along ``a`` is shared by every plane, so it is computed once. For many planes
    on few positions (the partner screen, the route's hot loop) the energy along the second
    directions is one matrix product through the pairwise coordinate products
    (:func:`_second_energy_batched`) instead of a ``(B, C, k)`` array.
    """
    a_norm = np.linalg.norm(a, axis=1)
    q1 = a / np.where(a_norm > 0, a_norm, 1.0)[:, None]
    c_norm = np.linalg.norm(c, axis=2)
    c_perp = c - np.sum(c * q1[:, None, :], axis=2, keepdims=True) * q1[:, None, :]
    perp_norm = np.linalg.norm(c_perp, axis=2)
    strength = np.minimum(a_norm[:, None], perp_norm)  # (B, C): the plane's weaker direction
    ok = (strength > _COND * np.sqrt(np.mean(strength**2, axis=0))).T  # (C, B)
    q2 = c_perp / np.where(ok.T, perp_norm, 1.0)[:, :, None]  # (B, C, 4)
    along1 = np.squeeze(vec @ q1[:, :, None], axis=2)  # (B, k)
    rest = np.maximum(energy - along1**2, 0.0)  # energy off the shared direction, (B, k)
    weight = ok.astype(rest.dtype)
    if c.shape[1] >= _BATCHED_PLANES:
        num = np.maximum(_product(weight, rest) - _second_energy_batched(vec, q2, weight), 0.0)
    else:
        off = q2 @ vec.transpose(0, 2, 1)  # (B, C, k): components along q2
        np.square(off, out=off)
        np.subtract(rest[:, None, :], off, out=off)
        np.maximum(off, 0.0, out=off)
        num = np.einsum("bcj,cb->cj", off, weight)
    den = _product(weight, energy)
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.inf)


_BATCHED_PLANES = 4  # planes per call from which the product form pays off
_PAIR_I, _PAIR_J = np.triu_indices(4)  # the 10 coordinate pairs (p <= r) of a 4-vector
_PAIR_MULT = np.where(_PAIR_I == _PAIR_J, 1.0, 2.0)


def _second_energy_batched(vec: np.ndarray, q2: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``sum_b weight[c, b] (q2[b, c] . vec[b, j])^2`` as ``(C, k)``, one BLAS product.

    The square of a dot product is a quadratic form in the coordinate products
    ``vec_p vec_r`` (10 distinct ones), so the sum over positions and pairs is a
    ``(C, 10 B) @ (10 B, k)`` product: memory O((C + k) B), not O(C k B). The difference with
    the shared-direction energy cancels to rounding (~1e-16 relative) for in-plane columns,
    at the :data:`_FLOOR` of every residual.
    """
    positions, count = q2.shape[:2]
    cols = np.ascontiguousarray(vec.transpose(0, 2, 1))  # (B, 4, k)
    coords = np.empty((positions, _PAIR_I.size, vec.shape[1]), dtype=vec.dtype)  # (B, 10, k)
    for idx, (p, r) in enumerate(zip(_PAIR_I, _PAIR_J)):
        np.multiply(cols[:, p], cols[:, r], out=coords[:, idx])
    coef = q2[:, :, _PAIR_I] * q2[:, :, _PAIR_J] * _PAIR_MULT * weight.T[:, :, None]  # (B, C, 10)
    return _product(coef.transpose(1, 0, 2).reshape(count, -1), coords.reshape(-1, vec.shape[1]))


_SERIAL_WORK = 1 << 17  # multiply-adds per BLAS call: below OpenBLAS's threading threshold


def _product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for a short inner dimension, in column chunks that BLAS runs on one thread.

    These products are small (a few million multiply-adds) but above OpenBLAS's threading
    threshold; on a shared 2-core machine waking the second thread costs 10-40x the arithmetic
    (measured: 15 ms against 0.4 ms for a (64, 160) @ (160, 1024) product).
    """
    width = max(1, _SERIAL_WORK // max(1, a.shape[0] * a.shape[1]))
    if b.shape[1] <= width:
        return a @ b
    out = np.empty((a.shape[0], b.shape[1]), dtype=np.result_type(a, b))
    for start in range(0, b.shape[1], width):
        np.matmul(a, b[:, start : start + width], out=out[:, start : start + width])
    return out
