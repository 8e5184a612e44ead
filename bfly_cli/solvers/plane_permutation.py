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
  (2 coordinates, the "slots") loses nothing. A class at level ``l`` is therefore a small
  problem ``(2^l positions, 2 slots, columns)``, and its sub-classes are coplanar groups of the
  4-vectors ``(positions c, c + 2^(l-1)) x (2 slots)``. Every level touches O(N^2) numbers.

Finding one class: the reference column (largest energy, ties by index) and a partner span a
plane per position; the class is every column with zero residual off it. Partners are tried in
a fixed pseudo-random order, screened on a few positions, and the first whose plane holds a
valid number of columns (a positive multiple of the group size) on the screen *and* on all
positions wins. Levels 0 and 1 impose nothing (a pair of columns always has rank <= 2), so the
recursion stops at classes of level 2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_ZERO = 1e-10  # relative off-plane energy of a member (~1e-30 when exact; computed stably)
_SINE = 1e-3  # reference and partner closer than this to parallel at a position: skip it there
_SCREEN = 16  # positions used to screen candidate partners
_BATCHES = (4, 8, 16, 32, 64)  # partners tried per round; their sum caps the search per class
_SEED = 20240611


@dataclass
class Discovery:
    """The order found and whether every class had a valid size (False: best effort only)."""

    perm: np.ndarray
    consistent: bool


def discover_plane_permutation(matrix: np.ndarray) -> Discovery:
    """Order (int64 ``perm``) such that ``matrix[:, perm]`` has rank-2 blocks when possible."""
    matrix = np.asarray(matrix, dtype=np.float64)
    n = matrix.shape[0]
    root = np.zeros((n, 2, n))
    root[:, 0, :] = matrix  # the matrix is a class of level L whose second slot is empty
    state = {"consistent": True}
    order = _descend(root, np.arange(n), state)
    return Discovery(np.asarray(order, dtype=np.int64), state["consistent"])


def _descend(slots: np.ndarray, cols: np.ndarray, state: dict) -> list[int]:
    """Depth-first order of one class ``(P positions, 2 slots, k columns)``; leaves at P <= 4."""
    positions = slots.shape[0]
    if positions <= 4:
        return cols.tolist()
    vec = _four_vectors(slots)
    order: list[int] = []
    for members in _classes(vec, positions // 2, state):
        order.extend(_descend(_project(vec[:, :, members]), cols[members], state))
    return order


def _four_vectors(slots: np.ndarray) -> np.ndarray:
    """``(P/2, 4, k)``: position c's two slots followed by position c + P/2's two slots."""
    positions, _, k = slots.shape
    return slots.reshape(2, positions // 2, 2, k).transpose(1, 0, 2, 3).reshape(positions // 2, 4, k)


def _project(vec: np.ndarray) -> np.ndarray:
    """Coordinates ``(B, 2, k)`` of each position's 4-vectors in their dominant plane.

    The plane of a class is exact, so the top two eigenvectors of the 4x4 Gram matrix capture
    every column; a line-like position gets a second slot of rounding noise, which later
    residuals treat as zero.
    """
    gram = np.einsum("bpj,bqj->bpq", vec, vec)
    _, vecs = np.linalg.eigh(gram)
    basis = vecs[:, :, 2:][:, :, ::-1]  # strongest direction first: slot 0
    return np.einsum("bpq,bpj->bqj", basis, vec)


def _classes(vec: np.ndarray, unit: int, state: dict) -> list[np.ndarray]:
    """Partition the columns of ``vec (B, 4, k)`` into coplanar classes of ``unit``-multiple size."""
    remaining = np.arange(vec.shape[2])
    found = []
    while remaining.size:
        members = _one_class(vec[:, :, remaining], unit, state)
        found.append(remaining[members])
        remaining = np.delete(remaining, members)
    return found


def _one_class(vec: np.ndarray, unit: int, state: dict) -> np.ndarray:
    """Local indices of the class of the reference column (see the module docstring)."""
    k = vec.shape[2]
    if k <= unit:
        return np.arange(k)
    energy = np.einsum("bpj,bpj->j", vec, vec)
    ref = int(np.argmax(energy))
    others = np.delete(np.arange(k), ref)
    partners = others[np.random.default_rng(_SEED + k).permutation(others.size)]
    screen = _screen_positions(vec.shape[0])
    best = (-1, None)
    start = 0
    rounds = _BATCHES if state["consistent"] else _BATCHES[:1]
    for size in rounds:
        batch = partners[start : start + size]
        start += size
        if batch.size == 0:
            break
        counts = np.sum(_residuals(vec[screen], ref, batch) <= _ZERO, axis=1)
        for idx in np.argsort(-counts, kind="stable"):
            if counts[idx] > best[0]:
                best = (int(counts[idx]), int(batch[idx]))
            if not _valid(int(counts[idx]), unit):
                continue
            res = _residuals(vec, ref, batch[idx : idx + 1])[0]
            members = np.nonzero(res <= _ZERO)[0]
            if _valid(members.size, unit):
                return members
    state["consistent"] = False
    res = _residuals(vec, ref, np.array([best[1]]))[0]
    return np.argsort(res, kind="stable")[:unit]


def _valid(count: int, unit: int) -> bool:
    return count >= unit and count % unit == 0


def _screen_positions(count: int) -> np.ndarray:
    """A fixed spread of at most ``_SCREEN`` positions (pseudo-random, so not all share low bits)."""
    if count <= _SCREEN:
        return np.arange(count)
    return np.sort(np.random.default_rng(_SEED + count).choice(count, _SCREEN, replace=False))


def _residuals(vec: np.ndarray, ref: int, partners: np.ndarray) -> np.ndarray:
    """Relative off-plane energy ``(len(partners), k)`` of every column, per partner's plane.

    The plane at each position is span(ref, partner), orthonormalized by Gram-Schmidt; positions
    where the two are nearly parallel (or the reference vanishes) do not define a plane and are
    left out of both the residual and the energy. Reference and partner count as members.
    """
    a = vec[:, :, ref]  # (B, 4)
    a_norm = np.linalg.norm(a, axis=1)
    q1 = a / np.where(a_norm > 0, a_norm, 1.0)[:, None]
    c = np.moveaxis(vec[:, :, partners], 2, 0)  # (C, B, 4)
    c_norm = np.linalg.norm(c, axis=2)
    c_perp = c - np.einsum("cbp,bp->cb", c, q1)[:, :, None] * q1
    perp_norm = np.linalg.norm(c_perp, axis=2)
    ok = (a_norm > 0) & (perp_norm > _SINE * c_norm)  # (C, B)
    q2 = c_perp / np.where(ok, perp_norm, 1.0)[:, :, None]
    x = np.einsum("bp,bpj->bj", q1, vec)
    y = np.einsum("cbp,bpj->cbj", q2, vec)
    col_energy = np.einsum("bpj,bpj->bj", vec, vec)
    off = np.maximum(col_energy - x**2 - y**2, 0.0)  # (C, B, k)
    weight = ok[:, :, None]
    num = np.sum(np.where(weight, off, 0.0), axis=1)
    den = np.sum(np.where(weight, col_energy, 0.0), axis=1)
    res = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.inf)
    res[np.arange(partners.size), partners] = 0.0
    res[:, ref] = 0.0
    return res
