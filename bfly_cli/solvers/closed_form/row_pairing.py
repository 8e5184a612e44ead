"""Both orders of a two-sided B.P, ``T = P_out B P_in``, discovered from the matrix alone.

A user's matrix often has its outputs in another order (a filter bank's channels, a spectrum in
another bin order): ``T = P_out B P_in``. The column discovery of :mod:`.bp_order` reads the
column halves off the row pairs ``(b, b + N/2)`` that the last stage mixes; with the rows
shuffled those pairs are unknown. They can be found first, level by level:

* **Partners.** In ``B = F diag(B0, B1)`` the two rows a 2x2 block of ``F`` mixes are
  ``(g00 x, g01 y)`` and ``(g10 x, g11 y)``: on each column half they are parallel. So for the
  strongest row ``r``, its partner ``r'`` is the row whose 2-vectors ``(T[r, j], T[r', j])`` lie on
  just two lines through the origin (one per column half). Every other row spreads over many
  lines. Lines are compared as points of the Bloch sphere (the 2-vector's direction, blind to its
  scale and phase): two lines are two points, which lie on one line in space, so a candidate is
  scored by its points' distance to their best-fit line, on a fixed sample of columns for every
  candidate and on all columns (with balanced halves) for the best few; the two lines also split
  the columns into halves. A reference row with several such partners (a row of few distinct
  values) is replaced by one whose partner stands out (:func:`_decisive_reference`).
* **All pairs.** Given the halves, every row restricted to one half is parallel to its partner's
  restriction and to no other row's. Each row gets a fingerprint, the Bloch points of two fixed
  random projections of its restriction to a few half-blocks (scale and phase invariant), and the
  pairs are the mutual nearest neighbours of the fingerprints (a k-d tree: O(N log N)).
* **Descent.** With the rows reordered as ``[tops, bottoms]`` the level is an ordinary B.P level:
  :mod:`.bp_order` splits the columns (on all pairs, robust to noise) and projects each group onto
  its halves. The half problems share their row index (the pair), so the next level pairs the
  rows of all groups at once; the pairings compose into ``P_out``.

Every decision is a nearest or a best choice, never a fixed tolerance on exact zeros: noise moves
the fingerprints by about its own size, while non-partners sit O(1) apart. Whether the result is
the structure is decided afterwards, by the rank-one certificate and the factors' error.

Sparse butterflies (rows that vanish on whole half-blocks: Haar, permutations, block-diagonal
butterflies) leave a row's partner undetermined at its own level; when the dense discovery fails
or its answer is not rank one on a matrix with small entries, :mod:`.sparse_pairing` decides
from the support (noise floor from a gap in the magnitudes) and defers those pairings to the
levels below. Dense matrices never reach it (one sampled check, a few milliseconds).
"""

from __future__ import annotations

import numpy as np

from ...metrics import NEAR_EXACT
from .. import RouteUnavailable
from .bp_order import _balanced_halves, _descend, _split_columns
from .serial_products import thin_product

_SEED = 20261202
_SCREEN_COLUMNS = 24  # sampled columns per group on which every candidate partner is scored
_CONFIRM = 4  # best-scored candidates confirmed on all columns
_BLOCKS = 8  # half-blocks whose projections make a row's fingerprint
_MIN_GAP_BITS = 10  # a gap of 2^10 in the entries' magnitudes separates zeros from the support
_ZERO_SHARE = 0.125  # a narrow gap counts when at least this share of the entries lies below it
# Share of (sampled) entries at or below the support floor from which the sparse discovery runs.
# Rows vanishing on whole half-blocks zero a large share (Haar: 1 - (log2 N + 1) / N; a
# permutation: 1 - 1/N; four dense blocks: 3/4); a dense matrix with a few rounding-level entries
# (a naive Hartley, cos + sin = 0 at a few angles: ~2 %) must not pay for the sparse search
# (super-linear: 20 s at N = 1024, 170 s at 2048).
_SPARSE_SHARE = 0.25
_LINES_OFF = 1e-4  # squared Bloch distance (~ squared sine) off two lines at which a partner is no partner
_CERTAIN = 1e-10  # a confirmed residual this small ends the confirmation (noise eps gives ~eps^2)
_DECISIVE = 1e-2  # a runner-up this far off two lines leaves the reference's partner unambiguous
_REFERENCES = 4  # further rows screened as the reference when the strongest one's partner is ambiguous


def discover_two_sided(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, cols)`` (int64) such that ``matrix[rows][:, cols]`` is as close to a butterfly as seen.

    The dense discovery runs first (its speed on dense matrices is unchanged). A matrix with
    entries far below its largest may be sparse: there the dense answer is kept only when it
    passes the rank-one certificate, and otherwise the sparse discovery of :mod:`.sparse_pairing`
    (support-based, deferred pairing) decides. Raises :class:`RouteUnavailable` when neither
    finds a two-sided B.P.
    """
    try:
        rows, cols = _dense_two_sided(matrix)
        if not _has_small_entries(matrix) or is_butterfly(matrix[rows][:, cols]):
            return rows, cols
        dense_error = RouteUnavailable("not a two-sided B.P: the dense pairing is not rank one")
    except RouteUnavailable as err:
        dense_error = err
    sample = matrix[:: max(1, matrix.shape[0] // 64)]  # zeros of a sparse butterfly reach most rows
    floor = None if support_floor(sample) is None else support_floor(matrix)
    if floor is None or np.mean(np.abs(sample) <= floor) < _SPARSE_SHARE:
        raise dense_error
    from .sparse_pairing import discover_sparse  # it imports this module's helpers

    try:
        rows, cols = discover_sparse(matrix, floor, _dense_two_sided)
    except RouteUnavailable as err:
        raise RouteUnavailable(f"{dense_error}; as a sparse butterfly: {err}") from None
    if not is_butterfly(matrix[rows][:, cols]):
        raise RouteUnavailable(f"{dense_error}; as a sparse butterfly: the orders found are not rank one")
    return rows, cols


def _has_small_entries(matrix: np.ndarray) -> bool:
    """True when some entry of 64 evenly spread rows is below 1e-3 of their largest: the matrix
    may be sparse, so a dense answer must be certified (DFT and Hadamard, with equal magnitudes,
    skip the certificate; a sample keeps the check at a few milliseconds for N = 4096)."""
    mag = _sq(matrix[:: max(1, matrix.shape[0] // 64)])
    return bool(mag.min() < 1e-6 * mag.max())


def _dense_two_sided(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The dense discovery (module docstring): pairs by two lines and fingerprints, level by level.

    Raises :class:`RouteUnavailable` when some level has no row whose pairing with the strongest
    row leaves two lines, or when the rows do not pair up.
    """
    if matrix.shape[0] <= 2:
        return np.arange(matrix.shape[0]), np.arange(matrix.shape[0])
    n = matrix.shape[0]
    mats = np.ascontiguousarray(matrix)[None]
    cols = np.arange(n)[None]
    orders: list[np.ndarray] = []
    while mats.shape[-1] > 2:
        order = _pair_rows(mats)
        mats = np.ascontiguousarray(mats[:, order, :])
        orders.append(order)
        first, second = _split_columns(mats, sparse=np.count_nonzero(mats) < mats.size)
        mats, cols = _descend(mats, cols, first, second)
    return _compose(orders), cols.reshape(-1).astype(np.int64)


def _compose(orders: list[np.ndarray]) -> np.ndarray:
    """The final row order from each level's ``[tops, bottoms]`` order of its shared row index.

    Final position ``c * m/2 + y`` at a level of size m is that level's row ``order[c * m/2 + idx(y)]``
    where ``idx(y)`` is the level below's answer for ``y`` (the pair index).
    """
    idx = np.arange(2)
    for order in reversed(orders):
        half = order.size // 2
        idx = order[np.concatenate([idx, idx + half])]
    return idx.astype(np.int64)


def _pair_rows(mats: np.ndarray) -> np.ndarray:
    """``[tops..., bottoms...]``: the rows of the ``(G, m, m)`` problems (shared index) in pairs."""
    return pair_rows_and_halves(mats)[0]


def pair_rows_and_halves(mats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_pair_rows` and the column halves ``(G, m)`` bool that the reference pair's two
    lines drew (True: the first line's), which a caller following one group can split by."""
    groups, m, _ = mats.shape
    rows = mats.transpose(1, 0, 2).reshape(m, groups * m)
    ref, screened = _decisive_reference(rows, groups, m)
    partner, halves = _partner(rows, ref, groups, m, screened)
    mate = _mutual_pairs(rows, halves, groups, m)
    if mate[ref] != partner:
        raise RouteUnavailable("not a two-sided B.P: the row pairs disagree with the reference row's partner")
    tops = np.array([r for r in range(m) if r < mate[r]], dtype=np.int64)
    return np.concatenate([tops, mate[tops]]), halves


def _decisive_reference(rows: np.ndarray, groups: int, m: int) -> tuple[int, np.ndarray]:
    """The reference row whose partner stands out, and its screened two-line residuals.

    The strongest row is kept unless a second row also lies on two lines with it (within
    :data:`_DECISIVE`): a row of few distinct values (a Hartley matrix's row 0, all ones, and
    rows N/4, N/2, 3N/4, all +-1) lies on two lines with several rows, only one of which is its
    partner in every group; the wrong one leaves halves under which the rows do not pair, or
    pair only in this group (a Hartley's odd half pairs k with N/4 - k). The next candidate is
    then the strongest row outside every ambiguous set seen so far (those rows share the
    reference's few values), up to :data:`_REFERENCES` more, and the one whose runner-up is
    farthest from two lines wins (ties: the strongest). When every row is ambiguous (a Hadamard
    matrix: every pair of rows lies on two lines) every choice is also valid: one screen, the
    strongest is kept.
    """
    energy = _sq(rows).sum(axis=1)
    excluded = np.zeros(m, dtype=bool)
    ref = int(np.argmax(energy))
    best: tuple[float, int, np.ndarray] | None = None
    for _ in range(1 + _REFERENCES):
        screened = _screen(rows, ref, groups, m)
        runner_up = float(np.partition(screened, 1)[1]) if screened.size > 1 else np.inf
        if best is None or (float(screened.min()) <= _LINES_OFF and runner_up > best[0]):
            best = (runner_up, ref, screened)
        if best[0] >= _DECISIVE:
            break
        excluded[ref] = True
        excluded[np.delete(np.arange(m), ref)[screened < _DECISIVE]] = True
        if excluded.all():
            break
        ref = int(np.argmax(np.where(excluded, -np.inf, energy)))
    return best[1], best[2]


def _screen(rows: np.ndarray, ref: int, groups: int, m: int) -> np.ndarray:
    """``(m - 1,)``: the two-line residual of every other row with ``ref`` on the sampled columns."""
    sample = _sample_columns(groups, m)
    others = np.delete(np.arange(m), ref)
    return _two_line_residual(rows[ref, sample], rows[others][:, sample])  # (C, G, s) -> (C,)


def _partner(rows: np.ndarray, ref: int, groups: int, m: int,
             screened: np.ndarray | None = None) -> tuple[int, np.ndarray]:
    """The reference row's partner and each group's column halves ``(G, m)`` bool (True: first line)."""
    others = np.delete(np.arange(m), ref)
    if screened is None:
        screened = _screen(rows, ref, groups, m)
    best = others[np.argsort(screened, kind="stable")[:_CONFIRM]]
    full = []
    for cand in best:
        full.append(_split_by_lines(rows[ref], rows[cand], groups, m))
        if full[-1][0] <= _CERTAIN:  # two lines on every column to rounding or small noise: no better partner
            break
    scores = [score for score, _ in full]
    pick = int(np.argmin(scores))
    if not scores[pick] <= _LINES_OFF:
        raise RouteUnavailable(f"not a two-sided B.P: no row pairs with the reference row on two lines "
                               f"(best residual {scores[pick]:.1e})")
    return int(best[pick]), full[pick][1]


def _sample_columns(groups: int, m: int) -> np.ndarray:
    """``(G, s)`` column indices into the ``(m, G m)`` row view: a fixed spread per group."""
    size = min(m, _SCREEN_COLUMNS)
    rng = np.random.default_rng(_SEED + m)
    local = np.sort(rng.choice(m, size, replace=False)) if size < m else np.arange(m)
    return (np.arange(groups)[:, None] * m + local[None, :]).astype(np.int64)


def _bloch(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The direction of each 2-vector ``(a, b)`` as a point of the unit sphere ``(..., 3)``, and its
    weight ``|a|^2 + |b|^2``. Parallel 2-vectors (any scale, any phase) give the same point."""
    weight = _sq(a) + _sq(b)
    cross = a * np.conj(b)
    point = np.stack([_sq(a) - _sq(b), 2 * cross.real, 2 * np.imag(cross)], axis=-1)
    safe = np.where(weight > 0, weight, 1.0)
    return point / safe[..., None], weight


def _two_line_residual(ref: np.ndarray, cand: np.ndarray) -> np.ndarray:
    """``(C,)``: weighted mean squared distance of each candidate's points to their best line.

    ``ref (G, s)``, ``cand (C, G, s)``. Two lines through the origin are two points of the Bloch
    sphere, and a line in space meets the sphere in at most two points: so the points of a
    partner lie on one line, and the distance to the best one (the two smallest eigenvalues of
    the points' weighted covariance) is zero exactly when there are at most two directions. One
    batched 3 x 3 eigenvalue problem per candidate and group, instead of a two-means (a screen:
    it only ranks; :func:`_split_by_lines` confirms on every column). Groups averaged.
    """
    point, weight = _bloch(np.broadcast_to(ref, cand.shape), cand)  # (C, G, s, 3), (C, G, s)
    vals = np.linalg.eigvalsh(_weighted_moments(point, weight)[1])
    return np.mean(np.maximum(vals[..., 0] + vals[..., 1], 0.0), axis=1)


def _split_by_lines(ref: np.ndarray, cand: np.ndarray, groups: int, m: int) -> tuple[float, np.ndarray]:
    """Residual off two lines on all columns with balanced halves, and the halves ``(G, m)``.

    The two lines are two points of the Bloch sphere, so each group's points are ordered along
    their best-fit line (the covariance's top axis, one 3 x 3 eigenproblem instead of a
    two-means) and its m/2 first columns form the first half (the one holding the heaviest
    column), as a B.P needs; the residual counts every column against its half's centre, so a
    candidate whose lines split the columns unevenly is no partner.
    """
    point, weight = _bloch(ref.reshape(groups, m), cand.reshape(groups, m))  # (G, m, 3), (G, m)
    tiny = np.finfo(np.float64).tiny
    mean, cov = _weighted_moments(point, weight)
    axis = np.linalg.eigh(cov)[1][..., -1]  # (G, 3)
    along = np.einsum("gmi,gi->gm", point - mean[:, None, :], axis)
    heavy = np.argmax(weight, axis=1)[:, None]
    along *= np.where(np.take_along_axis(along, heavy, axis=1) > 0, -1.0, 1.0)  # heaviest column: first half
    order = np.argsort(along, axis=1, kind="stable")
    first = np.zeros((groups, m), dtype=bool)
    np.put_along_axis(first, order[:, : m // 2], True, axis=1)
    resid = 0.0
    for side in (first, ~first):
        w = weight * side
        centre = np.einsum("gm,gmi->gi", w, point) / np.maximum(w.sum(axis=1), tiny)[:, None]
        resid += float(np.einsum("gm,gm->", w, np.sum((point - centre[:, None, :]) ** 2, axis=-1)))
    return resid / max(float(weight.sum()), tiny), first


def _weighted_moments(point: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean ``(..., 3)`` and covariance ``(..., 3, 3)`` of points ``(..., s, 3)``."""
    total = np.maximum(weight.sum(axis=-1), np.finfo(np.float64).tiny)[..., None]
    weighted = weight[..., None] * point
    mean = weighted.sum(axis=-2) / total
    second = np.swapaxes(weighted, -1, -2) @ point / total[..., None]  # batched 3 x s @ s x 3
    return mean, second - mean[..., :, None] * mean[..., None, :]


def _mutual_pairs(rows: np.ndarray, halves: np.ndarray, groups: int, m: int) -> np.ndarray:
    """Each row's partner (``mate[r]``), as mutual nearest neighbours of scale-free fingerprints."""
    from scipy.spatial import cKDTree

    feats = _fingerprints(rows, halves, groups, m)
    _, near = cKDTree(feats).query(feats, k=2)
    mate = np.where(near[:, 0] == np.arange(m), near[:, 1], near[:, 0])
    if np.any(mate[mate] != np.arange(m)) or np.any(mate == np.arange(m)):
        raise RouteUnavailable("not a two-sided B.P: the rows do not pair up (their restrictions to the "
                               "column halves are not parallel in pairs)")
    return mate.astype(np.int64)


def _fingerprints(rows: np.ndarray, halves: np.ndarray, groups: int, m: int) -> np.ndarray:
    """``(m, 3 K)``: per row, the Bloch point of two fixed random projections of its restriction to
    each of K half-blocks (both halves of the strongest groups). Partners' restrictions are
    parallel on every block, with other factors on each, so the points are equal and no scale
    enters (a row that vanishes on a block gets the origin there)."""
    rng = np.random.default_rng(_SEED)
    local = rows.reshape(m, groups, m)
    strength = _sq(local[:: max(1, m // 16)]).sum(axis=(0, 2))  # a few rows rank the groups well enough
    feats = []
    for g in np.argsort(-strength, kind="stable")[: _BLOCKS // 2]:
        block = local[:, g]
        for side in (halves[g], ~halves[g]):
            probe = np.zeros((m, 2))
            probe[side] = rng.standard_normal((m // 2, 2))  # zero off the half: no column gather
            image = thin_product(block, probe)
            point, _ = _bloch(image[:, 0], image[:, 1])

            feats.append(point)
    return np.concatenate(feats, axis=1)


def _sq(x: np.ndarray) -> np.ndarray:
    return x.real**2 + x.imag**2 if np.iscomplexobj(x) else x * x


def support_floor(matrix: np.ndarray) -> float | None:
    """The magnitude below which an entry is noise, or None when the entries show no gap (dense).

    Binary exponents of ``|T_ij| / max |T|`` are histogrammed (one pass, no sort). A run of empty
    exponents at least ``_MIN_GAP_BITS`` wide separates exact, rounding or small noise zeros from
    the support: the highest such run (nearest the largest entry) is taken. Larger noise leaves
    a narrower run just above its own population, which is then at least ``_ZERO_SHARE`` of the
    entries: the lowest such run is taken (runs inside the noise's thin lower tail have few
    entries below them). The floor is the run's geometric middle.
    """
    mag = np.abs(matrix).ravel()
    top = float(mag.max(initial=0.0))
    if top == 0.0:
        return None
    exps = 1 - np.frexp(mag / top)[1]  # 0 for the largest entry
    exps[mag == 0] = 1100  # exact zeros below every subnormal
    counts = np.bincount(exps, minlength=1101)
    used = np.nonzero(counts)[0]
    if used.size < 2:
        return None
    width = np.diff(used)
    below = mag.size - np.cumsum(counts[used])[:-1]  # entries below each run
    wide = np.nonzero(width >= _MIN_GAP_BITS)[0]
    populated = np.nonzero((width >= 2) & (below >= _ZERO_SHARE * mag.size))[0]
    if wide.size:
        run = wide[0]
    elif populated.size:
        run = populated[-1]
    else:
        return None
    return top * 2.0 ** (-(used[run] + used[run + 1]) / 2)


def is_butterfly(ordered: np.ndarray) -> bool:
    """Every block of every split rank one (two fixed random probes per block; the 2x2 Gram
    determinant of their images vanishes up to ``NEAR_EXACT**2`` of its scale, summed)."""
    n = ordered.shape[0]
    rng = np.random.default_rng(_SEED)
    for lev in range(1, n.bit_length() - 1):
        hi, lo = n >> lev, 1 << lev
        blocks = ordered.reshape(hi, lo, hi, lo).transpose(1, 2, 0, 3)
        images = blocks @ rng.standard_normal((lo, 2))
        gram = np.einsum("bacp,bacq->bapq", images.conj(), images)
        det = np.abs(gram[..., 0, 0] * gram[..., 1, 1] - np.abs(gram[..., 0, 1]) ** 2)
        if np.sum(det) > NEAR_EXACT**2 * np.sum(np.abs(gram[..., 0, 0] * gram[..., 1, 1])):
            return False
    return True


class _ParityForest:
    """Union-find over columns with the parity (same half 0, other half 1) to each root; used by
    :mod:`.sparse_pairing` to keep the accepted pairs' column relations consistent."""

    def __init__(self, m: int) -> None:
        self.parent = list(range(m))
        self.par = [0] * m

    def find(self, j: int) -> tuple[int, int]:
        """Root of j and j's parity relative to it (with path compression)."""
        path = []
        while self.parent[j] != j:
            path.append(j)
            j = self.parent[j]
        acc = 0
        for node in reversed(path):
            acc ^= self.par[node]
            self.par[node], self.parent[node] = acc, j
        return j, (self.par[path[0]] if path else 0)

    def agrees(self, rel: np.ndarray) -> bool:
        """No relation ``(a, c, p)`` contradicts the forest (checked on a scratch copy)."""
        seen: dict[int, tuple[int, int]] = {}
        for a, c, p in rel.tolist():
            ra, pa = self._find_scratch(a, seen)
            rc, pc = self._find_scratch(c, seen)
            if ra == rc:
                if pa ^ pc != p:
                    return False
            else:
                seen[rc] = (ra, pa ^ pc ^ p)
        return True

    def _find_scratch(self, j: int, seen: dict[int, tuple[int, int]]) -> tuple[int, int]:
        root, par = self.find(j)
        while root in seen:
            root, step = seen[root]
            par ^= step
        return root, par

    def balanced_with(self, rel: np.ndarray) -> bool:
        """Whether, with ``rel`` joined, the classes still allow two halves of m/2 columns (a false
        pair of rows on one half splits that half's columns and usually unbalances the split)."""
        trial = _ParityForest(0)
        trial.parent, trial.par = self.parent.copy(), self.par.copy()
        trial.join(rel)
        root, side = trial.classes()
        return _balanced_halves(root[None], side[None], 1, root.size) is not None

    def classes(self) -> tuple[np.ndarray, np.ndarray]:
        """Per column: its class (root) and side (parity to the root)."""
        found = [self.find(j) for j in range(len(self.parent))]
        return np.array([r for r, _ in found]), np.array([p for _, p in found], dtype=bool)

    def join(self, rel: np.ndarray) -> None:
        for a, c, p in rel.tolist():
            ra, pa = self.find(a)
            rc, pc = self.find(c)
            if ra != rc:
                self.parent[rc], self.par[rc] = ra, pa ^ pc ^ p
