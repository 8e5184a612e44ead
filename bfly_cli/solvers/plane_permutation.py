"""Discovering a column order under which every block of every split has rank <= 2.

The rank-one test of :mod:`.permutation` groups columns by the *direction* of their 2-vectors at
each row pair. For ``T = Re(B P)`` the 2-vectors carry no information (any 2-vector is the real
part of a multiple of any complex direction), so the test moves up one level: at rows
``b + m N/4`` (m = 0..3) every column's 4-vector lies in one of four 2-dimensional *planes*, one
per value of the two top bits of its position. Grouping columns by plane gives the four quarters;
how quarters pair into halves is not constrained by rank-2 structure (a 2 x N/2 block always has
rank <= 2), so the canonical pairing is used. Each half is then a problem with two "slots" per
row position (rows ``c`` and ``c + N/2``), and from there every split is a two-way plane grouping
of the 4-vectors ``(rows c, c + m/2) x (2 slots)``, followed by projecting each group onto its
plane (2 coordinates = the slots of the half-size problem).

Plane grouping, exact case: the reference column of largest energy and one partner span its
group's plane at every row group; the partner is the candidate (a few, spread over the columns)
whose plane leaves the most columns with zero residual. The group is the ``size`` columns of
smallest residual; the rest are grouped the same way. All groups of a level form one batch.
"""

from __future__ import annotations

import numpy as np

_CANDIDATES = 12
_ZERO = 1e-10  # relative residual energy (computed as a difference, so ~eps when exact)


STRATEGIES = ("pairs", "quarters")


def discover_plane_permutation(matrix: np.ndarray, strategy: str = "pairs") -> np.ndarray:
    """``perm`` (int64) such that ``matrix[:, perm]`` has rank-2 blocks when that is possible.

    ``strategy`` picks how levels below the top split: ``"pairs"`` groups 4-vectors into two
    planes directly (right when every internal node is genuinely 2-dimensional, as for DCT/DST);
    ``"quarters"`` first finds four planes of 8-vectors (right when the slots of a level are
    degenerate, as for the Hartley transform, whose halves repeat a half-size Hartley). The
    caller tries both and keeps the order whose factorization is exact.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    n = matrix.shape[0]
    slots = np.zeros((1, n, 2, n))
    slots[0, :, 0, :] = matrix  # the matrix is a slot problem whose second slot is empty
    cols = np.arange(n)[None]
    top = True
    while slots.shape[-1] > 2:
        slots, cols = _split_level(slots, cols, quarters=top or strategy == "quarters")
        top = False
    return cols.reshape(-1).astype(np.int64)


def _split_level(slots: np.ndarray, cols: np.ndarray, quarters: bool) -> tuple[np.ndarray, np.ndarray]:
    """One two-way split of every slot problem ``(G, m, 2, m)``; returns the ``(2G, m/2, 2, m/2)``."""
    g, m = slots.shape[:2]
    vec = slots.reshape(g, 2, m // 2, 2, m).transpose(0, 1, 3, 2, 4).reshape(g, 4, m // 2, m)
    if m <= 4:  # every split of a 4 x 4 slot problem has rank <= 2: canonical order
        groups = np.tile(np.arange(4).reshape(1, 2, 2), (g, 1, 1))
    elif quarters:
        groups = _halves(slots)
    else:
        groups = _plane_groups(vec, 2)
        swap = groups[:, 1, 0] < groups[:, 0, 0]
        groups[swap] = groups[swap][:, ::-1]
    sub = np.take_along_axis(vec[:, None], groups[:, :, None, None, :], axis=4)  # (G, 2, 4, m/2, m/2)
    basis = _plane_basis(sub)  # (G, 2, m/2, 4, 2)
    coords = np.einsum("ghbpq,ghpbj->ghbqj", basis, sub)  # (G, 2, m/2 rows, 2 slots, m/2 cols)
    new_cols = np.take_along_axis(cols[:, None, :], groups, axis=2)
    return coords.reshape(2 * g, m // 2, 2, m // 2), new_cols.reshape(2 * g, m // 2)


def _halves(slots: np.ndarray) -> np.ndarray:
    """The two column halves ``(G, 2, m/2)`` of each slot problem, sorted, canonical order.

    Quarters come from the planes of the 8-vectors (four row positions ``c + k m/4`` x two
    slots). When one plane holds half of the columns (two quarters with conjugate complex
    directions, two real lines, or an empty second slot as at the top) that plane is a half;
    otherwise the quarters are paired the one way of three under which each half's 4-vectors
    (rows ``c``, ``c + m/2`` x slots) lie in a plane.
    """
    g, m = slots.shape[:2]
    vec8 = slots.reshape(g, 4, m // 4, 2, m).transpose(0, 1, 3, 2, 4).reshape(g, 8, m // 4, m)
    order, res = _one_group(vec8, m // 4)
    forced = np.take_along_axis(res, order[:, m // 2 - 1 : m // 2], axis=1)[:, 0] <= _ZERO
    first = order[:, : m // 2]
    halves = np.stack([np.sort(first, axis=1), _complement(first, m)], axis=1)
    if not np.all(forced):
        paired = _paired_quarters(slots, _plane_groups(vec8, 4))
        halves = np.where(forced[:, None, None], halves, paired)
    halves = np.sort(halves, axis=2)
    swap = halves[:, 1, 0] < halves[:, 0, 0]
    halves[swap] = halves[swap][:, ::-1]
    return halves


def _paired_quarters(slots: np.ndarray, quarters: np.ndarray) -> np.ndarray:
    """Halves ``(G, 2, m/2)`` from the pairing of quarters whose halves are closest to planar."""
    g, m = slots.shape[:2]
    vec = slots.reshape(g, 2, m // 2, 2, m).transpose(0, 1, 3, 2, 4).reshape(g, 4, m // 2, m)
    options = []
    scores = []
    for a, b, c, d in ((0, 1, 2, 3), (0, 2, 1, 3), (0, 3, 1, 2)):
        halves = np.stack([np.concatenate([quarters[:, a], quarters[:, b]], axis=1),
                           np.concatenate([quarters[:, c], quarters[:, d]], axis=1)], axis=1)
        sub = np.take_along_axis(vec[:, None], halves[:, :, None, None, :], axis=4)
        gram = np.einsum("ghpbj,ghqbj->ghbpq", sub, sub)
        vals = np.linalg.eigvalsh(gram)
        off = vals[..., :2].sum(axis=(1, 2, 3)) / np.maximum(vals.sum(axis=(1, 2, 3)), 1e-300)
        options.append(halves)
        scores.append(off)
    best = np.argmin(np.stack(scores, axis=1), axis=1)
    return np.stack(options, axis=1)[np.arange(g), best]


def _complement(members: np.ndarray, m: int) -> np.ndarray:
    """Sorted indices in ``range(m)`` not in each row of ``members``."""
    mask = np.ones((members.shape[0], m), dtype=bool)
    np.put_along_axis(mask, members, False, axis=1)
    return np.nonzero(mask)[1].reshape(members.shape[0], m - members.shape[1])


def _plane_basis(sub: np.ndarray) -> np.ndarray:
    """Orthonormal basis ``(..., 4, 2)`` of the dominant plane of each row group's 4-vectors."""
    gram = np.einsum("...pbj,...qbj->...bpq", sub, sub)
    _, vecs = np.linalg.eigh(gram)
    return vecs[..., :, 2:]


def _plane_groups(vec: np.ndarray, count: int) -> np.ndarray:
    """Split the columns of each problem into ``count`` equal groups lying in common planes.

    ``vec`` is ``(G, 4, B, m)``: coordinates x row groups x columns. Returns ``(G, count, m/count)``
    sorted column indices per group, groups in the order found.
    """
    g, _, _, m = vec.shape
    size = m // count
    remaining = np.tile(np.arange(m), (g, 1))
    found = []
    for _ in range(count - 1):
        sub = np.take_along_axis(vec, remaining[:, None, None, :], axis=3)
        order, _ = _one_group(sub, size)
        members, rest = order[:, :size], order[:, size:]
        found.append(np.sort(np.take_along_axis(remaining, members, axis=1), axis=1))
        remaining = np.take_along_axis(remaining, rest, axis=1)
    found.append(np.sort(remaining, axis=1))
    return np.stack(found, axis=1)


def _one_group(vec: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Columns ordered by residual off the reference column's plane (its group first), and the
    residuals: the plane is the candidate's whose ``size``-th smallest residual is smallest."""
    g, _, _, m = vec.shape
    energy = np.einsum("gpbj,gpbj->gj", vec, vec)
    ref = np.argmax(energy, axis=1)
    # pseudo-random (fixed) candidates: evenly spaced ones share low index bits, and in an
    # unshuffled transform those bits can put every candidate outside the reference's group
    picks = np.random.default_rng(m).permutation(m)[: _CANDIDATES + 1]
    best_score, best_res = None, None
    for pick in picks:
        partner = np.where(pick == ref, (pick + 1) % m, pick)
        res = _plane_residual(vec, ref, partner, energy)
        score = np.sort(res, axis=1)[:, size - 1]
        if best_score is None:
            best_score, best_res = score, res
        else:
            better = score < best_score
            best_score = np.where(better, score, best_score)
            best_res[better] = res[better]
    return np.argsort(best_res, axis=1, kind="stable"), best_res


def _plane_residual(vec: np.ndarray, ref: np.ndarray, partner: np.ndarray, energy: np.ndarray) -> np.ndarray:
    """Energy of each column off the plane span(ref, partner), summed over row groups, relative."""
    pick = np.stack([ref, partner], axis=1)  # (G, 2)
    pair = np.take_along_axis(vec, pick[:, None, None, :], axis=3)  # (G, 4, B, 2)
    basis, _ = np.linalg.qr(pair.transpose(0, 2, 1, 3))  # (G, B, 4, 2)
    proj = np.einsum("gbpq,gpbj->gbqj", basis, vec)
    off = energy - np.einsum("gbqj,gbqj->gj", proj, proj)
    res = off / np.maximum(energy, np.finfo(np.float64).tiny)
    np.put_along_axis(res, pick, -1.0, axis=1)  # the two that define the plane belong to it
    return res
