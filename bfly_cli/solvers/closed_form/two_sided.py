"""Two-sided basis read-off: ``T = W1 diag(lam) W2^-1`` with two butterflies ``W1``, ``W2``.

Row and column scalings break the similarity that :mod:`.eigenbasis` reads: ``D1 C D2`` with
``C = W diag(lam) W^-1`` is ``(D1 W) diag(lam) (D2^-1 W)^-1``, and ``D1 W``, ``D2^-1 W`` are still
butterflies (a diagonal folds into the outer stage), but they differ. So every 2x2 block is
``T_bp = L_b diag(x, y) R_p^-1`` with a *row* frame ``L_b`` and a *column* frame ``R_p`` per pair.
No scaling is estimated: the read-off is blind to them.

The transport of :mod:`.eigenbasis` becomes bipartite: a block carries a column frame to a row
frame (``L_b ~ T_bp R_p``) and back (``R_p ~ T_bp^-1 L_b``). Dijkstra over the ``2h`` row and column
nodes (hop length ``log cond(T_bp)`` plus the block's weakness against the largest block) gives a
tree; in its gauge every block is ``X diag(x, y) X^-1`` for one unknown ``X`` per component (tree
blocks are the identity there, so the same ``X`` multiplies ``L`` and ``R``), read off the
traceless parts of all blocks by one rank-one fit, and components are aligned through their
joining blocks, exactly as in :mod:`.eigenbasis` (shared code). Halves ``x``, ``y`` recurse.

This is also the general two-butterfly class ``B2 R B1 R`` (``= W1 W2^-1`` with ``W2^-1 = R B1 R``).
"""

from __future__ import annotations

import numpy as np

from .. import RouteUnavailable
from .block_algebra import column_gauge, condition, inv2, similarity, sq, unit_scale
from .eigen_components import NOISE_MARGIN, ROUNDING, reference_frames
from .eigenbasis import _HOP, _UNREACHED, _WELL_CONDITIONED, _gap_floor, _pair_blocks, _unexplained


def two_sided_basis(t: np.ndarray, stop_above: float = np.inf) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Twiddles of ``W1`` and ``W2``, ``lam`` (``T = W1 diag(lam) W2^-1``) and the residual
    (largest off-diagonal mass of a level relative to ``||T||_F``; see
    :func:`~.eigenbasis.butterfly_eigenbasis`)."""
    n = t.shape[0]
    levels = n.bit_length() - 1
    mats = np.asarray(t, dtype=np.complex128)[None]
    total = float(np.linalg.norm(mats))
    if total == 0.0:
        raise RouteUnavailable("the matrix is zero")
    left = np.empty((levels, n // 2, 2, 2), dtype=np.complex128)
    right = np.empty_like(left)
    residual = 0.0
    for lev in range(levels - 1, -1, -1):
        with np.errstate(all="ignore"):
            try:
                lf, rf, halves, off = _split_level(_pair_blocks(mats), residual * total, stop_above * total)
            except np.linalg.LinAlgError:
                off = np.inf
        if not np.isfinite(off):
            return left, right, np.full(n, np.nan, dtype=np.complex128), np.inf
        if max(residual, off / total) > stop_above:
            return left, right, np.full(n, np.nan, dtype=np.complex128), max(residual, off / total)
        left[lev], right[lev] = lf.reshape(n // 2, 2, 2), rf.reshape(n // 2, 2, 2)
        residual = max(residual, off / total)
        mats = halves
    return left, right, mats.reshape(n), residual


def _split_level(blocks: np.ndarray, noise: float, limit: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Row frames, column frames ``(K, h, 2, 2)``, halves ``(2K, h, h)`` and off-diagonal mass."""
    count, h = blocks.shape[2:4]
    length, block_noise = _lengths(blocks, noise / np.sqrt(count * h * h))
    order, parent, root = _bipartite_tree(length)
    lt, rt = _carry(blocks, order, parent)
    tilde = similarity(blocks, inv2(lt), rt)
    if _unexplained(tilde, root[:, :h], root[:, h:]) > limit:
        return lt, rt, blocks, np.inf  # one component, yet no common K: not this structure
    x = _reference(tilde, root, order, block_noise)
    lf, rf = column_gauge(lt @ x[:, :h]), column_gauge(rt @ x[:, h:])
    split = similarity(blocks, inv2(lf), rf)
    if max(np.max(condition(lt)), np.max(condition(rt))) > _WELL_CONDITIONED:
        y = _reference(split, root, order, block_noise)
        l2, r2 = column_gauge(lf @ y[:, :h]), column_gauge(rf @ y[:, h:])
        split = similarity(split, inv2(inv2(lf) @ l2), inv2(rf) @ r2)
        lf, rf = l2, r2
    off = float(np.sqrt(sq(split[0, 1]).sum() + sq(split[1, 0]).sum()))
    halves = np.stack([split[0, 0], split[1, 1]], axis=1).reshape(2 * count, h, h)
    return lf, rf, halves, off


def _lengths(blocks: np.ndarray, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """Hop length ``(K, b, p)`` of the edge row b -- column p: ``log cond(T_bp)`` plus its weakness
    ``log(s_ref / s)`` plus :data:`_HOP`; infinite at rounding or noise level (as in :mod:`.eigenbasis`)."""
    count = blocks.shape[2]
    a, b, c, d = blocks[0, 0], blocks[0, 1], blocks[1, 0], blocks[1, 1]
    det = np.abs(a * d - b * c)
    fro2 = sq(a) + sq(b) + sq(c) + sq(d)
    ref = np.max(fro2.reshape(count, -1), axis=1)[:, None, None]
    smin = det / np.sqrt(np.maximum(fro2, 1e-300))
    floor = np.maximum(ROUNDING * np.sqrt(fro2), np.maximum(ROUNDING * np.sqrt(ref), NOISE_MARGIN * noise))
    cut, gap_noise = _gap_floor(smin, ref)
    valid = smin > np.maximum(floor, cut)
    safe = np.maximum(det, 1e-300)
    length = np.log(np.maximum(fro2, safe) / (2 * safe)) + 0.5 * np.log(np.maximum(ref, safe) / safe) + _HOP
    length[~valid] = np.inf
    return length, np.maximum(gap_noise, noise)


def _bipartite_tree(length: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dijkstra over rows ``0..h-1`` and columns ``h..2h-1`` (batched over K): order, parents, roots."""
    count, h = length.shape[:2]
    rows = np.arange(count)
    order = np.zeros((count, 2 * h), dtype=np.int64)
    parent = np.zeros((count, 2 * h), dtype=np.int64)
    root = np.zeros((count, 2 * h), dtype=np.int64)
    done = np.zeros((count, 2 * h), dtype=bool)
    done[:, 0] = True
    dist = np.full((count, 2 * h), np.inf)
    dist[:, 0] = 0.0
    dist[:, h:] = length[:, 0, :]
    source = np.zeros((count, 2 * h), dtype=np.int64)
    for step in range(1, 2 * h):
        x = np.where(done, np.inf, np.minimum(dist, _UNREACHED)).argmin(axis=1)
        linked = np.isfinite(dist[rows, x])
        p = source[rows, x]
        parent[rows, x] = np.where(linked, p, x)
        root[rows, x] = np.where(linked, root[rows, p], x)
        dist[rows, x] = np.where(linked, dist[rows, x], 0.0)
        order[:, step] = x
        done[rows, x] = True
        is_row = x < h
        hop = np.where(is_row[:, None], length[rows, np.minimum(x, h - 1), :], length[rows, :, np.maximum(x - h, 0)])
        through = dist[rows, x][:, None] + hop
        side = slice(h, 2 * h), slice(0, h)
        for flag, part, offset in ((is_row, side[0], h), (~is_row, side[1], 0)):
            better = flag[:, None] & (through < dist[:, part]) & ~done[:, part]
            dist[:, part] = np.where(better, through, dist[:, part])
            source[:, part] = np.where(better, x[:, None], source[:, part])
    return order, parent, root


def _carry(blocks: np.ndarray, order: np.ndarray, parent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row frames ``L`` and column frames ``R`` carried along the tree from identity roots."""
    count, nodes = order.shape
    h = nodes // 2
    frames = np.zeros((count, nodes, 2, 2), dtype=np.complex128)
    frames[:, :] = np.eye(2)
    rows = np.arange(count)
    for step in range(1, nodes):
        x = order[:, step]
        p = parent[rows, x]
        is_row = x < h
        b = np.where(is_row, x, p)
        q = np.where(is_row, p - h, x - h)
        block = np.moveaxis(blocks[:, :, rows, np.clip(b, 0, h - 1), np.clip(q, 0, h - 1)], (0, 1), (1, 2))
        link = np.where(is_row[:, None, None], block, inv2(block))
        carried = unit_scale(link @ frames[rows, p])
        frames[rows, x] = np.where((p != x)[:, None, None], carried, frames[rows, x])
    return frames[:, :h], frames[:, h:]


def _reference(tilde: np.ndarray, root: np.ndarray, order: np.ndarray, block_noise: np.ndarray) -> np.ndarray:
    """``X`` ``(K, 2h, 2, 2)`` of every node: its component's frame (:func:`~.eigenbasis.reference_frames`)."""
    h = root.shape[1] // 2
    frames = reference_frames(tilde, root[:, :h], root[:, h:], order, 2 * h, block_noise)
    return frames[np.arange(root.shape[0])[:, None], root]
