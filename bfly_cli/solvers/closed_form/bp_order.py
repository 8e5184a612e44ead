"""Discovering the column permutation P that makes ``T P^T`` a butterfly, from the matrix alone.

The last butterfly stage (stride N/2) mixes rows ``b`` and ``b + N/2``. Below it the matrix is
block diagonal, so every column of ``T`` in the first half of ``B = T[:, perm]`` has, at each row
pair ``b``, a 2-vector ``(T[b, j], T[b + N/2, j])`` parallel to one fixed direction ``d0(b)``, and
every column of the second half is parallel to another direction ``d1(b)``. Grouping the columns
by those directions splits them in two; projecting each group onto its direction gives the two
half-size butterflies, and the same test recurses. No search: O(N^2) per level, O(N^2 log N) in
all, and exact whenever T really is B.P.

For matrices that are only close to B.P the grouping is a balanced two-means on the same
directions (seeded by the column of largest norm, refined twice), which returns the best split it
can see rather than failing. All groups of one level are processed as one batch.

Canonical order: the group holding the smaller original column index goes first, and columns of
a group keep their original order, so the output is deterministic.
"""

from __future__ import annotations

import numpy as np

_REFINE_SWEEPS = 2
_ZERO_ENERGY = 1e-24  # a 2-vector with less energy than this fraction of its group's largest is zero
_PARALLEL = 1e-20  # |u x v|^2 <= this * |u|^2 |v|^2: parallel (exact data; rounding gives ~1e-32)


def discover_permutation(matrix: np.ndarray) -> np.ndarray:
    """``perm`` (int64) such that ``matrix[:, perm]`` is as close to a butterfly as the test sees."""
    n = matrix.shape[0]
    mats = np.ascontiguousarray(matrix)[None]  # (groups, m, m); C order keeps every pass streaming
    cols = np.arange(n)[None]  # (groups, m): original column indices of each group
    sparse = np.count_nonzero(mats) < mats.size  # a dense matrix never takes the sparse path
    while mats.shape[-1] > 2:
        first, second = _split_columns(mats, sparse)
        mats, cols = _descend(mats, cols, first, second)
    return cols.reshape(-1).astype(np.int64)


def _pair_vectors(mats: np.ndarray) -> np.ndarray:
    """View ``(G, m, m)`` as ``(G, 2, m/2, m)``: ``[g, :, b, j]`` is column j's 2-vector at pair b."""
    groups, m, _ = mats.shape
    return mats.reshape(groups, 2, m // 2, m)


def _split_columns(mats: np.ndarray, sparse: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Local column indices ``(G, m/2)`` of the two groups, each sorted, smaller-index group first.

    ``sparse`` False skips the zero check (the caller knows the matrix has no exact zeros)."""
    vec = _pair_vectors(mats)
    half = mats.shape[-1] // 2
    first = _sparse_split(vec) if sparse and _has_zero_pairs(mats, vec) else None
    if first is None:
        score = _cross_score(vec)
        for _ in range(0 if _clean_split(score, half) else _REFINE_SWEEPS):
            first = _smallest(score, half)
            score = _direction_score(vec, first)
        first = _smallest(score, half)
    first = np.sort(first, axis=1)
    second = _complement(first, mats.shape[-1])
    swap = second[:, 0] < first[:, 0]
    first[swap], second[swap] = second[swap], first[swap].copy()
    return first, second


def _has_zero_pairs(mats: np.ndarray, vec: np.ndarray) -> bool:
    """True when some column's 2-vector is exactly zero at some pair (checked only if the matrix
    has exact zeros at all: one cheap pass for dense matrices)."""
    if np.count_nonzero(mats) == mats.size:
        return False
    return bool(np.any((vec[:, 0] == 0) & (vec[:, 1] == 0)))


def _sparse_split(vec: np.ndarray) -> np.ndarray | None:
    """The exact split of a B.P whose columns have zero 2-vectors at some pairs, else None.

    The reference-column score assumes every column is nonzero at the reference's pairs; a sparse
    B.P (a permutation matrix, zero twiddles) breaks that: a column with no pair in common with the
    reference scores 0, "parallel", whatever its half. Here each pair only relates the columns that
    are nonzero there: same direction means same half, the other direction means the other half.
    Connected components of those relations with parity (through the double cover graph: node
    ``(j, s)`` is "column j on side s") give each column's side up to one flip per component, and
    the flips are chosen so both halves have m/2 columns. Called only when the matrix holds exact
    zeros (dense matrices keep the one-pass score). Returns None when some pair shows three
    directions or the relations contradict each other (not exactly B.P), or when no balanced
    choice exists; the score-based split then decides.
    """
    groups, _, h, m = vec.shape
    size = _sq(vec[:, 0]) + _sq(vec[:, 1])  # (G, h, m)
    live = size > _ZERO_ENERGY * size.max(axis=(1, 2), keepdims=True)
    second_class, ok = _direction_classes(vec, size, live)
    if not ok:
        return None
    side = _sides(live, second_class, groups, m)
    if side is None:
        return None
    return _balanced_halves(*side, groups, m)


def _direction_classes(vec: np.ndarray, size: np.ndarray, live: np.ndarray) -> tuple[np.ndarray, bool]:
    """Per pair, which live columns point along a second direction (the first: the first live
    column's); False as second value when some pair holds three or more directions."""
    parallel0 = _parallel_to(vec, size, np.argmax(live, axis=2))
    other = live & ~parallel0
    parallel1 = _parallel_to(vec, size, np.argmax(other, axis=2))
    return other, bool(np.all(~other | parallel1))


def _parallel_to(vec: np.ndarray, size: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """``(G, h, m)``: column j's 2-vector at pair b is parallel to column ``ref[g, b]``'s."""
    vref = np.take_along_axis(vec, ref[:, None, :, None], axis=3)  # (G, 2, h, 1)
    cross = _sq(vref[:, 0] * vec[:, 1] - vref[:, 1] * vec[:, 0])
    return cross <= _PARALLEL * np.take_along_axis(size, ref[..., None], axis=2) * size


def _sides(live: np.ndarray, second_class: np.ndarray, groups: int, m: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Each column's component and side (bool) from the parity relations, or None if they clash."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    total = groups * m
    ref = np.argmax(live, axis=2)  # (G, h): every live column is related to the pair's first one
    g, b, j = np.nonzero(live)
    a = g * m + ref[g, b]
    c = g * m + j
    flip = second_class[g, b, j].astype(np.int64) * total
    rows = np.concatenate([a, a + total])
    cols = np.concatenate([c + flip, c + total - flip])
    graph = coo_matrix((np.ones(rows.size, dtype=np.int8), (rows, cols)), shape=(2 * total, 2 * total))
    _, labels = connected_components(graph, directed=False)
    on0, on1 = labels[:total], labels[total:]
    if np.any(on0 == on1):
        return None
    return np.minimum(on0, on1).reshape(groups, m), (on0 > on1).reshape(groups, m)


def _balanced_halves(component: np.ndarray, side: np.ndarray, groups: int, m: int) -> np.ndarray | None:
    """``(G, m/2)`` columns of the first half: one side of every component, m/2 columns in all.

    A subset-sum per group over the components' side sizes (bitset dynamic programme, components
    in order of their smallest column, the unflipped side preferred): deterministic.
    """
    half = m // 2
    first = np.empty((groups, half), dtype=np.int64)
    for grp in range(groups):
        comps, index = np.unique(component[grp], return_inverse=True)
        ones = np.bincount(index, weights=side[grp], minlength=comps.size).astype(int)
        zeros = np.bincount(index, minlength=comps.size) - ones
        take = _subset_choice(zeros, ones, half)
        if take is None:
            return None
        members = np.nonzero(side[grp] == take[index])[0]
        first[grp] = members
    return first


def _subset_choice(zeros: np.ndarray, ones: np.ndarray, target: int) -> np.ndarray | None:
    """Per component, the side (bool) whose columns join the first half so that they total ``target``."""
    zeros, ones = zeros.tolist(), ones.tolist()  # Python ints: the bitsets grow past 64 bits
    reach = [1]  # bitsets: reach[k] bit t set <=> the first k components can contribute t columns
    for z, o in zip(zeros, ones):
        reach.append((reach[-1] << z) | (reach[-1] << o))
    if not reach[-1] >> target & 1:
        return None
    take = np.zeros(len(zeros), dtype=bool)
    for k in range(len(zeros) - 1, -1, -1):
        if target >= zeros[k] and reach[k] >> (target - zeros[k]) & 1:
            target -= zeros[k]
        else:
            take[k] = True
            target -= ones[k]
    return take


def _clean_split(score: np.ndarray, half: int) -> bool:
    """True when every group splits exactly: ``half`` columns at rounding level, the rest far off.

    Then the refinement sweeps cannot change the answer and are skipped (the exact-B.P fast path).
    """
    eps = float(np.finfo(score.dtype).eps)
    part = np.sort(score, axis=1)
    return bool(np.all(part[:, half - 1] <= eps) and np.all(part[:, half] > np.sqrt(eps)))


def _cross_score(vec: np.ndarray) -> np.ndarray:
    """Normalized sum over pairs of |v_ref x v_j|^2, with v_ref the column of largest norm.

    Written as a few passes over the matrix with one temporary (the cross products), because at
    the first level this is a full N x N sweep and memory traffic is its whole cost.
    """
    energy = _sq_sum(vec, (1, 2))  # (G, m)
    ref = np.argmax(energy, axis=1)
    vref = np.take_along_axis(vec, ref[:, None, None, None], axis=3)[..., 0]  # (G, 2, m/2)
    cross = vref[:, 0, :, None] * vec[:, 1]
    cross -= vref[:, 1, :, None] * vec[:, 0]  # (G, m/2, m)
    wref = _sq(vref[:, 0]) + _sq(vref[:, 1])  # (G, m/2)
    norms = _weighted_sq_sum(vec[:, 0], wref) + _weighted_sq_sum(vec[:, 1], wref)
    return _safe_ratio(_sq_sum(cross, (1,)), norms)


def _sq(x: np.ndarray) -> np.ndarray:
    """``|x|^2`` elementwise, real."""
    return x.real**2 + x.imag**2 if np.iscomplexobj(x) else x * x


def _real_pairs(x: np.ndarray) -> np.ndarray:
    """A real view of ``x`` with the last axis doubled (re, im interleaved); ``x`` itself when real.

    Needs a contiguous last axis; every caller passes a view of a C-contiguous array's columns.
    """
    if not np.iscomplexobj(x):
        return x
    return x.view(x.real.dtype) if x.strides[-1] == x.itemsize else np.stack([x.real, x.imag], axis=-1).reshape(*x.shape[:-1], -1)


def _fold(x: np.ndarray, complex_: bool) -> np.ndarray:
    """Undo :func:`_real_pairs` on a result indexed by the doubled axis: add re and im parts."""
    return x.reshape(*x.shape[:-1], -1, 2).sum(axis=-1) if complex_ else x


def _sq_sum(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """``sum |x|^2`` over ``axes`` (never the last) in one pass, without a temporary array."""
    flat = _real_pairs(x)
    letters = "abcdefgh"[: x.ndim]
    kept = "".join(c for i, c in enumerate(letters) if i not in axes)
    return _fold(np.einsum(f"{letters},{letters}->{kept}", flat, flat), np.iscomplexobj(x))


def _weighted_sq_sum(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``sum_b weight[g, b] |x[g, b, j]|^2`` -> ``(G, m)``, one pass, no temporary."""
    flat = _real_pairs(x)
    return _fold(np.einsum("gb,gbk,gbk->gk", weight, flat, flat), np.iscomplexobj(x))


def _direction_score(vec: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Residual off the first group's directions minus residual off the second's, per column."""
    second = _complement(np.sort(first, axis=1), vec.shape[-1])
    d0 = _group_directions(vec, first)
    d1 = _group_directions(vec, second)
    energy = np.sum(np.abs(vec) ** 2, axis=(1, 2))
    off0 = energy - np.sum(np.abs(_project(vec, d0)) ** 2, axis=1)
    off1 = energy - np.sum(np.abs(_project(vec, d1)) ** 2, axis=1)
    return _safe_ratio(off0 - off1, energy)


def _group_directions(vec: np.ndarray, members: np.ndarray) -> np.ndarray:
    """Unit direction ``(G, m/2, 2)`` of the best rank-one fit of each group's 2-vectors per pair."""
    return _dominant_direction(_gather(vec, members))


def _gather(vec: np.ndarray, members: np.ndarray) -> np.ndarray:
    """The member columns ``(G, 2, m/2, h)`` of each group."""
    return np.take_along_axis(vec, members[:, None, None, :], axis=3)


def _dominant_direction(sub: np.ndarray) -> np.ndarray:
    """Top eigenvector of each pair's 2x2 Gram matrix ``sum_j v_j v_j^H``, in closed form.

    Closed form instead of a batched ``eigh``: the Gram matrices are 2x2 and there are N/2 of
    them per group, so three reductions and a square root are all that is needed.
    """
    a = np.sum(np.abs(sub[:, 0]) ** 2, axis=-1)
    d = np.sum(np.abs(sub[:, 1]) ** 2, axis=-1)
    c = np.sum(sub[:, 0] * sub[:, 1].conj(), axis=-1)
    return _direction_from_gram(a, d, c)


def _direction_from_gram(a: np.ndarray, d: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Unit top eigenvector ``(..., 2)`` of the Hermitian 2x2 matrices ``[[a, c], [c*, d]]``."""
    top = 0.5 * (a + d) + np.sqrt(0.25 * (a - d) ** 2 + np.abs(c) ** 2)
    # Two algebraically equal eigenvectors; take the better-conditioned one per pair.
    first = np.stack([c, top - a], axis=-1)
    second = np.stack([top - d, np.conj(c)], axis=-1)
    use_first = (a >= d)[..., None]
    vec = np.where(use_first, first, second)
    diagonal = np.abs(c) == 0  # Gram already diagonal: the axis with more energy
    vec[diagonal] = np.where(use_first[diagonal], [1.0, 0.0], [0.0, 1.0])
    norm = np.linalg.norm(vec, axis=-1, keepdims=True)
    return vec / np.where(norm > 0, norm, 1.0)


def _project(vec: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Coordinates ``(G, m/2, m)`` of each column's 2-vectors along ``direction``."""
    return direction[..., 0, None].conj() * vec[:, 0] + direction[..., 1, None].conj() * vec[:, 1]


def _descend(mats: np.ndarray, cols: np.ndarray, first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two half-size problems of every group, interleaved as ``[g0 first, g0 second, ...]``.

    One column gather puts each group's two halves side by side; the projections onto the
    halves' directions are then written straight into the new (2G, h, h) array.
    """
    groups, h = first.shape
    order = np.concatenate([first, second], axis=1)  # (G, m)
    vec = _gather_columns(mats, order).reshape(groups, 2, h, 2, h)  # [g, c, b, half, j']
    x0, x1 = vec[:, 0], vec[:, 1]  # (G, b, half, j')
    direction = _dominant_direction_split(x0, x1)  # (G, b, half, 2)
    out = np.empty((groups, 2, h, h), dtype=mats.dtype)
    view = out.transpose(0, 2, 1, 3)  # (G, b, half, j')
    np.multiply(direction[..., 0, None].conj(), x0, out=view)
    view += direction[..., 1, None].conj() * x1
    new_cols = np.take_along_axis(cols, order, axis=1).reshape(2 * groups, h)
    return out.reshape(2 * groups, h, h), new_cols


def _gather_columns(mats: np.ndarray, order: np.ndarray) -> np.ndarray:
    """``mats[g][:, order[g]]`` for every group, as one contiguous ``(G, m, m)`` array.

    ``np.take`` per group while groups are few and large (it copies much faster than the
    fancy indexing of ``take_along_axis``); one batched ``take_along_axis`` once they are many.
    """
    groups = mats.shape[0]
    if groups > 16:
        return np.take_along_axis(mats, order[:, None, :], axis=2)
    out = np.empty(mats.shape, dtype=mats.dtype)
    for g in range(groups):
        np.take(mats[g], order[g], axis=1, out=out[g], mode="clip")  # 'raise' would buffer a copy
    return out


def _dominant_direction_split(x0: np.ndarray, x1: np.ndarray) -> np.ndarray:
    """:func:`_dominant_direction` of the 2-vectors ``(x0, x1)[..., j]``, summed over the last axis.

    The three Gram entries are one-pass reductions (complex read as real pairs), no temporaries.
    """
    complex_ = np.iscomplexobj(x0)
    f0, f1 = _real_pairs(x0), _real_pairs(x1)
    a = np.einsum("...k,...k->...", f0, f0)
    d = np.einsum("...k,...k->...", f1, f1)
    c = np.einsum("...k,...k->...", f0, f1)  # Re sum x0 conj(x1)
    if complex_:  # Im sum x0 conj(x1) = sum (im0 re1 - re0 im1)
        c = c + 1j * (np.einsum("...k,...k->...", f0[..., 1::2], f1[..., 0::2])
                      - np.einsum("...k,...k->...", f0[..., 0::2], f1[..., 1::2]))
    return _direction_from_gram(a, d, c)


def _smallest(score: np.ndarray, count: int) -> np.ndarray:
    """Indices of the ``count`` smallest scores per row (ties broken by index)."""
    return np.argsort(score, axis=1, kind="stable")[:, :count]


def _complement(members: np.ndarray, m: int) -> np.ndarray:
    """Sorted indices in ``range(m)`` not in each (sorted) row of ``members``."""
    mask = np.ones((members.shape[0], m), dtype=bool)
    np.put_along_axis(mask, members, False, axis=1)
    return np.nonzero(mask)[1].reshape(members.shape[0], m - members.shape[1])


def _safe_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    tiny = np.finfo(np.result_type(den.dtype, np.float32)).tiny
    return num / np.maximum(den, tiny)
