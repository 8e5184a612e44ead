"""Eigendecomposition of a matrix diagonalized by a butterfly basis, in O(N^2) with no dense ``eig``.

Suppose ``A = W diag(lam) W^-1`` with ``W`` an increasing-stride butterfly (rows in natural order,
columns in the butterfly's own order). Split ``W = G . diag(W0, W1)``: ``G`` is the last stage
(stride N/2, one 2x2 block ``G_b`` per row pair ``(b, b + N/2)``) and ``W0``, ``W1`` are the
half-size butterflies below it. Then ``A = G diag(A0, A1) G^-1`` with ``A_i = W_i diag(lam_i) W_i^-1``,
so every 2x2 block ``A_bb'`` (rows ``b, b+N/2``, columns ``b', b'+N/2``) satisfies::

    A_bb' = G_b diag(A0[b, b'], A1[b, b']) G_b'^-1.

**Transport, not local eigenproblems.** An invertible block carries the frame of pair ``b'`` to
pair ``b``: ``G_b ~ A_bb' G_b'`` up to column scaling (a free gauge: a diagonal similarity of the
half problems). A shortest-path forest over the pairs (:func:`_links`: a hop costs its log
conditioning and its weakness against the largest block; blocks at the noise level are no
links) fixes every ``G_b = T_b G_0`` from the root's unknown ``G_0``. In that tree gauge every
block ``T_b^-1 A_bb' T_b'`` is ``G_0 diag(x, y) G_0^-1``, so the traceless parts of *all* blocks are
multiples of one matrix ``K``, whose eigenvectors are ``G_0``: a rank-one fit (a 3x3 Gram matrix)
over all N^2/4 blocks, i.e. least squares over the whole level (:mod:`.eigen_components`). A
first-order least-squares correction of all frames (:func:`_least_squares_step`) then minimizes
the level's off-diagonal mass.

Local 2x2 eigenproblems (the diagonal blocks of ``A`` or of ``A D A``) see only short paths; the
circulant of a short filter has blocks ``c_d I`` everywhere except at the wrap-around, so they
are all degenerate there although the split is unique. The transport reaches the wrap-around.
And when *every* traceless part vanishes (up to the noise floor), ``A ~ S (x) I_2`` in the tree
gauge: both halves are the same matrix, any ``G_0`` is a valid split, and ``G_0 = I`` is taken.
This is how repeated eigenvalues (symmetric filters, ``lam_k = lam_-k``) are resolved: the
choice is deferred to the level where the two copies differ, or is free.

Rank-one blocks (a scalar half, as in a ``{k, -k}`` eigenspace) carry half a frame and split the
forest into components; :mod:`.eigen_components` gives each its frame (from its own blocks, or
from the ranges and kernels of its rank-one joining blocks) and aligns them. All sub-problems of
one level are processed as one batch; noise thresholds come from the levels above or from the
gap between structured and noise-only blocks (:func:`_gap_floor`). See
``docs/algorithms.md`` (Two butterflies).
"""

from __future__ import annotations

import numpy as np

from .. import RouteUnavailable
from .block_algebra import column_gauge, condition, inv2, similarity, sq, unit_scale
from .eigen_components import NOISE_MARGIN, ROUNDING, reference_frames

_HOP = 1e-3  # path length of one transport hop besides its log conditioning
_CG_STEPS = 8  # conjugate-gradient products of the least-squares frame correction
_BIN = 0.5  # decades per bin of the block-strength histogram
_GAP_DECADES = 3.0  # empty stretch of block strengths that separates noise from structure
_WELL_CONDITIONED = 20.0  # ||T||_F^2 / |det T| of the carried frames above which a second fit runs
_UNREACHED = 1e300  # distance of a pair no link reaches (finite: unvisited ones must win over visited)


def butterfly_eigenbasis(a: np.ndarray, stop_above: float = np.inf) -> tuple[np.ndarray, np.ndarray, float]:
    """Twiddles ``(L, N/2, 2, 2)`` of ``W``, eigenvalues ``lam`` (``A = W diag(lam) W^-1``) and residual.

    The residual is the largest off-diagonal mass met while splitting, relative to ``||A||_F``:
    about 1e-16 when ``A`` really has this structure, the noise level for a noisy one, O(1) when
    it does not. Once it exceeds ``stop_above`` the rest of the work is skipped (the twiddles and
    eigenvalues returned are then incomplete and must not be used).
    """
    n = a.shape[0]
    levels = n.bit_length() - 1
    mats = np.asarray(a, dtype=np.complex128)[None]
    total = float(np.linalg.norm(mats))
    if total == 0.0:
        raise RouteUnavailable("the matrix is zero, so it has no eigenvector basis to read a butterfly from")
    twiddle = np.empty((levels, n // 2, 2, 2), dtype=np.complex128)
    residual = 0.0
    for lev in range(levels - 1, -1, -1):
        with np.errstate(all="ignore"):
            try:
                g, halves, off = _split_level(_pair_blocks(mats), residual * total, stop_above * total)
            except np.linalg.LinAlgError:
                off = np.inf  # a frame so singular that its eigenproblem failed: not this structure
        if not np.isfinite(off):
            return twiddle, np.full(n, np.nan, dtype=np.complex128), np.inf
        twiddle[lev] = g.reshape(n // 2, 2, 2)
        residual = max(residual, off / total)
        mats = halves
        if residual > stop_above:
            return twiddle, np.full(n, np.nan, dtype=np.complex128), residual
    return twiddle, mats.reshape(n), residual


def _pair_blocks(mats: np.ndarray) -> np.ndarray:
    """``(K, m, m)`` -> ``(2, 2, K, h, h)``: ``[i, j, k, b, b']`` is entry (i, j) of the 2x2 block of
    row pair b and column pair b' (a view: component planes keep the arithmetic elementwise)."""
    count, m, _ = mats.shape
    h = m // 2
    return mats.reshape(count, 2, h, 2, h).transpose(1, 3, 0, 2, 4)


def _split_level(blocks: np.ndarray, noise: float = 0.0, limit: float = np.inf) -> tuple[np.ndarray, np.ndarray, float]:
    """Stage blocks ``G`` ``(K, h, 2, 2)``, half problems ``(2K, h, h)`` and off-diagonal mass.

    Carried from the identity, the frames are ``G_b diag(x, y) G_0^-1``, as badly conditioned as
    ``|x / y|`` along the path, and ``G_0`` comes out with that much rounding error. The split in
    the resulting frames ``G_b`` is well conditioned, so when the carried frames were not, a
    second fit on it (a near-identity correction, the same for a whole component) removes what
    is left.
    """
    count, h = blocks.shape[2:4]
    weight, length, block_noise = _links(blocks, noise / np.sqrt(count * h * h))
    order, parent, root = _tree(length)
    transport = _carry(blocks, weight, order, parent)
    del weight, length  # each N x N matrix here is 4 GiB at N = 16384: none outlives its use
    tilde = similarity(blocks, inv2(transport), transport)
    if _unexplained(tilde, root, root) > limit:
        return transport, blocks, np.inf  # one component, yet no common K: not this structure
    ks = np.arange(count)[:, None]
    frames = column_gauge(transport @ reference_frames(tilde, root, root, order, h, block_noise)[ks, root])
    del tilde
    split = similarity(blocks, inv2(frames), frames)
    if np.max(condition(transport)) > _WELL_CONDITIONED:
        first = frames
        frames = column_gauge(first @ reference_frames(split, root, root, order, h, block_noise)[ks, root])
        change = inv2(first) @ frames
        split = similarity(split, inv2(change), change)
    total = float(np.sum(sq(blocks)))
    off2 = float(np.sum(sq(split[0, 1])) + np.sum(sq(split[1, 0])))
    for _ in range(_LS_STEPS):
        if not off2 > (ROUNDING**2) * total:
            break
        step = _least_squares_step(split)
        if not np.max(np.abs(step[..., 0, 1]) + np.abs(step[..., 1, 0]), initial=0.0) <= _LS_SMALL:
            break  # not a small correction (NaN included): the first-order model does not hold
        trial = similarity(split, inv2(step), step)
        trial_off2 = float(np.sum(sq(trial[0, 1])) + np.sum(sq(trial[1, 0])))
        if not trial_off2 < off2:
            break  # rounding (or a null space) is all that is left
        frames, split, gain, off2 = frames @ step, trial, off2 / trial_off2, trial_off2
        if gain < _LS_GAIN:
            break
    off = float(np.sqrt(off2))
    halves = np.stack([split[0, 0], split[1, 1]], axis=1).reshape(2 * count, h, h)
    return frames, halves, off


_LS_STEPS = 3  # first-order corrections per level at most (each squares a small error)
_LS_GAIN = 4.0  # a correction that shrinks the off-diagonal mass less than this is the last one
# Largest |E_01| + |E_10| of a correction that is applied: a first-order step is only valid when
# small, and a large one can shrink the off-diagonal mass of a matrix without the structure by an
# ill-conditioned similarity (a row-shuffled DFT's screen sub-matrix: 0.44 -> 6e-4 with |E| ~ 1).
_LS_SMALL = 0.25


def _least_squares_step(split: np.ndarray) -> np.ndarray:
    """First-order correction ``I + E_b`` ``(K, h, 2, 2)`` of the frames that minimizes the
    off-diagonal mass of the whole level (least squares over all blocks, not along one path).

    With ``G_b -> G_b (I + E_b)`` the (0, 1) plane becomes ``S01 + A0 diag(e) - diag(e) A1`` to
    first order (``e_b = E_b[0, 1]``, ``A0``, ``A1`` the half problems), and the (1, 0) plane
    likewise with the halves swapped: two linear least-squares problems in h unknowns each,
    solved by conjugate gradients on their normal equations (:data:`_CG_STEPS` products, O(h^2)
    each). Their null space (a common mixing of two equal halves) is left alone.
    """
    upper = _gauge_fit(split[0, 1], split[0, 0], split[1, 1])
    lower = _gauge_fit(split[1, 0], split[1, 1], split[0, 0])
    out = np.zeros(upper.shape + (2, 2), dtype=np.complex128)
    out[..., 0, 0] = out[..., 1, 1] = 1.0
    out[..., 0, 1] = upper
    out[..., 1, 0] = lower
    return out


def _gauge_fit(off: np.ndarray, left: np.ndarray, right: np.ndarray, steps: int = _CG_STEPS) -> np.ndarray:
    """``e`` ``(K, h)`` minimizing ``||off + left diag(e) - diag(e) right||_F`` per problem:
    ``steps`` conjugate-gradient products on the normal equations ``M^H M e = -M^H off``."""
    cross = left.conj() * right  # P[b, c]
    diag = np.sum(sq(left), axis=1) + np.sum(sq(right), axis=2)  # column c of left, row c of right

    def normal(e: np.ndarray) -> np.ndarray:
        return diag * e - np.einsum("kbc,kb->kc", cross, e) - np.einsum("kcb,kb->kc", cross.conj(), e)

    rhs = np.einsum("kcb,kcb->kc", right.conj(), off) - np.einsum("kbc,kbc->kc", left.conj(), off)
    e = np.zeros_like(rhs)
    res = rhs.copy()
    direction = res.copy()
    rr = np.sum(sq(res), axis=1)
    for _ in range(steps):
        hd = normal(direction)
        alpha = rr / np.maximum(np.sum((direction.conj() * hd).real, axis=1), 1e-300)
        e += alpha[:, None] * direction
        res -= alpha[:, None] * hd
        new = np.sum(sq(res), axis=1)
        direction = res + (new / np.maximum(rr, 1e-300))[:, None] * direction
        rr = new
    return e


def _unexplained(tilde: np.ndarray, root_rows: np.ndarray, root_cols: np.ndarray) -> float:
    """Size of the traceless parts that no single ``K`` per component explains (in the tree gauge
    every block of a component is ``G_0 diag G_0^-1``): a lower bound of the level's failure that
    costs one pass, so a matrix without the structure is rejected before the split."""
    vec = np.stack([tilde[0, 0] - tilde[1, 1], tilde[0, 1], tilde[1, 0]], axis=-1)  # (K, b, b', 3)
    count, h = root_rows.shape
    if np.any(root_rows) or np.any(root_cols):
        vec = vec * (root_rows[:, :, None] == root_cols[:, None, :])[..., None]
    gram = np.zeros((count, 2 * h, 3, 3), dtype=np.complex128)
    np.add.at(gram, (np.arange(count)[:, None], root_rows), np.swapaxes(vec, -1, -2) @ vec.conj())
    vals = np.linalg.eigvalsh(gram)
    return float(np.sqrt(max(np.sum(vals[..., :2]), 0.0)) / 2)


def _links(blocks: np.ndarray, noise: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weights ``z`` of the transport links ``L_bp = U + z V`` ``(K, h, h)``, hop lengths, and the
    noise expected in one block ``(K,)`` (the larger of ``noise`` and what :func:`_gap_floor` reads).

    Carrying a frame through ``A_bp = G_b diag(x, y) G_p^-1`` multiplies its conditioning by up
    to ``|x / y|``, and adds the block's noise relative to its smallest singular value. So the
    link is the better conditioned of ``U + V`` and ``U + iV``, ``U = A_bp / ||A_bp||`` and
    ``V = A_pb^-1 / ||A_pb^-1||``: both have the form ``G_b diag(.) G_p^-1``, and where ``A`` favours
    one half, ``A_pb^-1`` favours the other, so the sum is balanced (a near-rank-one ``A_bp`` alone
    would carry one column only). A hop costs ``log cond(L_bp) + log(s_ref / s)`` (``s_ref`` the
    largest block, ``s`` the geometric-mean singular value of the weaker of ``A_bp`` and ``A_pb``: the
    noise that the link amplifies) plus :data:`_HOP`. A block whose smallest singular value is at
    rounding level, or within :data:`NOISE_MARGIN` of ``noise`` (the expected noise in one
    block), is no link (infinite length): a rank-one block carries only half a frame.
    """
    count = blocks.shape[2]
    a, b, c, d = blocks[0, 0], blocks[0, 1], blocks[1, 0], blocks[1, 1]  # planes (K, b, p)
    det_c = a * d - b * c
    det = np.abs(det_c)
    fro2 = sq(a) + sq(b) + sq(c) + sq(d)
    ref = np.max(fro2.reshape(count, -1), axis=1)[:, None, None]
    smin = det / np.sqrt(np.maximum(fro2, 1e-300))  # within sqrt(2) of the smallest singular value
    floor = np.maximum(ROUNDING * np.sqrt(fro2), np.maximum(ROUNDING * np.sqrt(ref), NOISE_MARGIN * noise))
    cut, gap_noise = _gap_floor(smin, ref)
    valid = smin > np.maximum(floor, cut)
    del smin, floor
    weight = np.empty(det_c.shape, dtype=np.complex128)
    length = np.empty(det.shape)
    for rows in _row_slabs(blocks):  # a dozen planes of temporaries per slab, not per matrix
        weight[:, rows], length[:, rows] = _slab_links(blocks, det_c, det, fro2, ref, valid, rows)
    return weight, length, np.maximum(gap_noise, noise)


def _row_slabs(blocks: np.ndarray) -> list[slice]:
    """Slices of the block rows ``b`` holding about a quarter of :data:`~bfly_cli.metrics.BLOCK_BYTES`
    of each plane."""
    from ... import metrics

    count, h = blocks.shape[2], blocks.shape[3]
    return metrics.block_slices(h, count * h * blocks.itemsize, metrics.BLOCK_BYTES // 4)  # a dozen temporaries per slab


def _slab_links(blocks: np.ndarray, det_c: np.ndarray, det: np.ndarray, fro2: np.ndarray, ref: np.ndarray,
                valid: np.ndarray, rows: slice) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_links`'s weights and lengths of the block rows ``rows``, the same elementwise
    formulas as over the whole planes (numpy may pick other loops for the slices: lengths an ulp
    apart): each needs the block at ``(b, p)`` and at the transposed position ``(p, b)``, both read
    as views of the whole planes.

    ``U = A_bp / |A_bp|``, ``V = adj(A_pb) conj(det_pb) / (|det_pb| |A_pb|)``: only the invariants of
    ``U + zV`` are formed here (its determinant and norm, for z = 1 and i); the links themselves
    are built for the tree edges only (:func:`_link`)."""
    a, b, c, d = (blocks[i, j][:, rows] for i, j in ((0, 0), (0, 1), (1, 0), (1, 1)))
    ta, tb, tc, td = (_t(blocks[i, j])[:, rows] for i, j in ((0, 0), (0, 1), (1, 0), (1, 1)))
    back_valid = _t(valid)[:, rows]
    fro = np.sqrt(np.maximum(fro2[:, rows], 1e-300))
    back_fro = np.sqrt(np.maximum(_t(fro2)[:, rows], 1e-300))
    back_det_c, back_det = _t(det_c)[:, rows], _t(det)[:, rows]
    scale = np.where(back_valid, np.conj(back_det_c) / np.maximum(back_det * back_fro, 1e-300), 0)  # V = scale adj(A_pb)
    det_u = det_c[:, rows] / fro2[:, rows].clip(1e-300)
    det_v = np.where(back_valid, np.conj(back_det_c) / _t(fro2)[:, rows].clip(1e-300), 0)
    cross = scale * (a * ta + d * td + b * tc + c * tb) / fro
    inner = np.conj(scale) * (a * np.conj(td) - b * np.conj(tb) - c * np.conj(tc) + d * np.conj(ta)) / fro
    norm_v = back_valid.astype(float)
    cond = [(1 + norm_v + 2 * (np.conj(z) * inner).real) / np.maximum(np.abs(det_u + z * cross + z * z * det_v), 1e-300)
            for z in (1.0, 1j)]
    turn = cond[1] < cond[0]
    here = det[:, rows]
    with np.errstate(divide="ignore"):
        weakest = np.maximum(np.minimum(here, np.where(back_valid, back_det, here)), 1e-300)
        length = np.log(np.minimum(cond[0], cond[1]) / 2) + 0.5 * np.log(np.maximum(ref, weakest) / weakest) + _HOP
    length[~valid[:, rows]] = np.inf
    return np.where(back_valid, np.where(turn, 1j, 1.0), 0.0), length


def _t(x: np.ndarray) -> np.ndarray:
    """The (K, p, b) plane of a (K, b, p) plane: the block of the transposed position."""
    return np.swapaxes(x, 1, 2)


def _link(blocks: np.ndarray, rows: np.ndarray, b: np.ndarray, p: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """The links ``U + z V`` ``(M, 2, 2)`` of the edges ``(rows, b, p)`` (see :func:`_links`)."""
    fwd = np.moveaxis(blocks[:, :, rows, b, p], (0, 1), (1, 2))
    bwd = np.moveaxis(blocks[:, :, rows, p, b], (0, 1), (1, 2))
    unit = unit_scale(fwd)
    z = weight[rows, b, p][:, None, None]
    with np.errstate(all="ignore"):
        inverse = np.where(z != 0, unit_scale(inv2(bwd)), 0)
    return unit + z * inverse


def _gap_floor(smin: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per problem: the level ``(K, 1, 1)`` below which blocks are noise, read off the blocks,
    and the noise level ``(K,)`` itself (the top of the population under the gap; 0 if none).

    A structured matrix plus noise has two populations of blocks: the structured ones, and
    those the structure leaves empty, which hold only the noise (most blocks of a short
    filter's circulant). On a log scale (half-decade bins of ``s_min / s_ref``) they are
    separated by an empty stretch; when the widest empty stretch spans at least
    :data:`_GAP_DECADES`, everything under it is noise and no link. A dense structured matrix
    has no such gap and nothing is cut.
    """
    count = smin.shape[0]
    with np.errstate(divide="ignore"):
        level = np.log10(np.maximum(smin, 1e-300) / np.sqrt(np.maximum(ref, 1e-300))).reshape(count, -1)
    low = np.log10(ROUNDING)
    bins = int(np.ceil(-low / _BIN)) + 2
    idx = np.clip(((level - low) / _BIN).astype(np.int64), -1, bins - 1)
    occupied = np.zeros((count, bins + 1), dtype=bool)
    occupied[np.repeat(np.arange(count), idx.shape[1]), (idx + 1).reshape(-1)] = True
    occupied = occupied[:, 1:]  # bin -1 (rounding level) dropped
    position = np.arange(bins)
    below = np.maximum.accumulate(np.where(occupied, position, -1), axis=1)
    previous = np.concatenate([np.full((count, 1), -1), below[:, :-1]], axis=1)
    gap = np.where(occupied & (previous >= 0), position - previous - 1, 0)
    top = np.argmax(gap, axis=1)
    wide = gap[np.arange(count), top] * _BIN >= _GAP_DECADES
    edge = np.where(wide, 10.0 ** (low + top * _BIN), 0.0)
    noise = np.where(wide, 10.0 ** (low + (previous[np.arange(count), top] + 1) * _BIN), 0.0)
    return edge[:, None, None] * np.sqrt(ref), noise * np.sqrt(ref[:, 0, 0])


def _tree(length: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A shortest-path forest over the pairs of each problem (Dijkstra on the hop ``length``
    ``(K, b, p)``, batched over the K problems): visiting order, parents, roots. Links ``c I``
    (a short filter away from its wrap-around) cost nothing; a pair with no finite link to the
    visited ones starts a new component (its own parent)."""
    count, h = length.shape[:2]
    order = np.zeros((count, h), dtype=np.int64)
    parent = np.zeros((count, h), dtype=np.int64)
    root = np.zeros((count, h), dtype=np.int64)
    done = np.zeros((count, h), dtype=bool)
    done[:, 0] = True
    dist, source = length[:, :, 0].copy(), np.zeros((count, h), dtype=np.int64)
    rows = np.arange(count)
    for step in range(1, h):
        b = np.where(done, np.inf, np.minimum(dist, _UNREACHED)).argmin(axis=1)
        p = source[rows, b]
        linked = np.isfinite(dist[rows, b])
        parent[rows, b] = np.where(linked, p, b)
        root[rows, b] = np.where(linked, root[rows, p], b)
        dist[rows, b] = np.where(linked, dist[rows, b], 0.0)
        order[:, step] = b
        done[rows, b] = True
        through = dist[rows, b][:, None] + length[rows, :, b]
        better = (through < dist) & ~done
        dist = np.where(better, through, dist)
        source = np.where(better, b[:, None], source)
    return order, parent, root


def _carry(blocks: np.ndarray, weight: np.ndarray, order: np.ndarray, parent: np.ndarray) -> np.ndarray:
    """Frames ``(K, h, 2, 2)``: a root keeps the identity, every other pair gets ``L_bp T_p``
    (unit Frobenius norm) from its parent, in visiting order."""
    count, h = order.shape
    frames = np.zeros((count, h, 2, 2), dtype=np.complex128)
    frames[:, :] = np.eye(2)
    rows = np.arange(count)
    for step in range(1, h):
        b = order[:, step]
        p = parent[rows, b]
        carried = _link(blocks, rows, b, p, weight) @ frames[rows, p]
        frames[rows, b] = np.where((p != b)[:, None, None], unit_scale(carried), frames[rows, b])
    return frames


