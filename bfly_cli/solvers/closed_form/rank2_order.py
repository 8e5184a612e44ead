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
from functools import lru_cache

import numpy as np

_ZERO = 1e-10  # relative off-plane energy of a member (~1e-30 when exact; computed stably)
_SINE = 1e-3  # reference and partner closer than this to parallel at a position: skip it there
_SCREEN = 16  # positions used to screen candidate partners
_SAMPLE = 64  # positions that decide membership (the projection then certifies all of them)
_BATCHES = (4, 8, 16, 32, 64)  # partners tried per round; their sum caps the search per class
_SEED = 20240611


class NoRankTwoOrder(ValueError):
    """Strict discovery only: a class search failed on every position, so no column order makes
    every block rank <= 2 (the search is exact, not heuristic, once all positions are used)."""


@dataclass
class Discovery:
    """The order found and whether every class had a valid size (False: best effort only)."""

    perm: np.ndarray
    consistent: bool


def discover_plane_permutation(matrix: np.ndarray, strict: bool = False) -> Discovery:
    """Order (int64 ``perm``) such that ``matrix[:, perm]`` has rank-2 blocks when possible.

    ``strict`` raises :class:`NoRankTwoOrder` at the first class that has no valid size on all
    positions instead of completing a best-effort order: a caller that only wants exact orders
    (``--solver auto``) then pays for one class search, not the whole tree, on matrices such
    as circulants that have no rank-2 order.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    n = matrix.shape[0]
    state = {"consistent": True, "strict": strict}
    if n <= 4:
        return Discovery(np.arange(n, dtype=np.int64), True)
    # The whole matrix is one class of level L with an empty second slot; its only class of
    # level L-1 holds every column (a 2 x N block always has rank <= 2), with rows c and c + N/2
    # as the two slots, so the search starts there.
    slots = np.ascontiguousarray(matrix.reshape(2, n // 2, n).transpose(1, 2, 0))
    order = _descend(slots, np.arange(n), state)
    return Discovery(np.asarray(order, dtype=np.int64), state["consistent"])


def _descend(slots: np.ndarray, cols: np.ndarray, state: dict) -> list[int]:
    """Depth-first order of one class ``(P positions, k columns, 2 slots)``; leaves at P <= 4."""
    positions = slots.shape[0]
    if positions <= 4:
        return cols.tolist()
    vec = np.concatenate([slots[: positions // 2], slots[positions // 2 :]], axis=2)  # (P/2, k, 4)
    order: list[int] = []
    for members, coords in _split(vec, positions // 2, state):
        order.extend(_descend(coords, cols[members], state))
    return order


def _split(vec: np.ndarray, unit: int, state: dict) -> list[tuple[np.ndarray, np.ndarray]]:
    """The classes of ``vec (B, k, 4)`` with their slot coordinates ``(B, size, 2)``.

    Membership is decided on a fixed sample of positions (cheap) and certified on all of them
    by the projection, which needs each class's 4x4 Gram matrices anyway: a class is coplanar
    exactly when their two smallest eigenvalues vanish. A failed certificate repeats the
    search on every position before the node is declared inconsistent.
    """
    sample = _sample_positions(vec.shape[0], _SAMPLE)
    attempts = [sample, None] if sample.size < vec.shape[0] else [None]
    for positions in attempts:
        trial = dict(state)
        try:
            classes = _classes(vec if positions is None else vec[positions], unit, trial)
        except NoRankTwoOrder:
            if positions is None:
                raise
            continue  # the sample may be misleading: strict mode decides on every position
        parts = [_project(vec[:, members]) for members in classes]
        if trial["consistent"] and all(ok for _, ok in parts) or positions is None:
            state["consistent"] = trial["consistent"] and all(ok for _, ok in parts)
            if state["strict"] and not state["consistent"]:
                raise NoRankTwoOrder(f"with groups of {unit} columns, a class is not coplanar on every position")
            return [(members, coords) for members, (coords, _) in zip(classes, parts)]
    raise AssertionError("unreachable: the last attempt uses every position")


def _project(vec: np.ndarray) -> tuple[np.ndarray, bool]:
    """Coordinates ``(B, k, 2)`` of each position's 4-vectors in their dominant plane, and
    whether the columns really are coplanar there (energy off the plane at rounding level).

    The top two eigenvectors of the 4x4 Gram matrix capture every column of a true class; a
    line-like position gets a second slot of rounding noise, which later residuals treat as
    zero.
    """
    gram = vec.transpose(0, 2, 1) @ vec
    vals, vecs = np.linalg.eigh(gram)
    coplanar = bool(np.sum(np.maximum(vals[:, :2], 0.0)) <= _ZERO * max(float(np.sum(vals)), np.finfo(np.float64).tiny))
    return vec @ vecs[:, :, :1:-1], coplanar  # strongest direction first: slot 0


def _classes(vec: np.ndarray, unit: int, state: dict) -> list[np.ndarray]:
    """Partition the columns of ``vec (B, k, 4)`` into coplanar classes of ``unit``-multiple size."""
    energy = np.einsum("bjp,bjp->bj", vec, vec)
    remaining = np.arange(vec.shape[1])
    found = []
    while remaining.size:
        members = _one_class(vec, energy, remaining, unit, state)
        found.append(members)
        remaining = remaining[~np.isin(remaining, members, assume_unique=True)]
    return found


def _one_class(vec: np.ndarray, energy: np.ndarray, remaining: np.ndarray, unit: int, state: dict) -> np.ndarray:
    """Column indices of the class of the reference column among ``remaining``."""
    k = remaining.size
    if k <= unit:
        return remaining
    ref = int(remaining[np.argmax(energy[:, remaining].sum(axis=0))])
    others = remaining[remaining != ref]
    partners = others[_shuffle(others.size)]
    screen = _screen_positions(vec.shape[0])
    whole = screen.size == vec.shape[0]  # the screen is every position: no separate verification
    sub = vec[screen][:, remaining]
    local_ref = int(np.nonzero(remaining == ref)[0][0])
    best = (-1, int(partners[0]))
    floor = k  # fewest columns in a screened plane that is defined (a line class fits in each)
    start = 0
    for size in _BATCHES if state["consistent"] else _BATCHES[:1]:
        batch = partners[start : start + size]
        start += size
        if batch.size == 0:
            break
        inside = _residuals(sub, energy[screen][:, remaining], sub[:, local_ref], vec[screen][:, batch]) <= _ZERO
        counts = np.sum(inside, axis=1)
        floor = min(floor, int(np.min(counts, initial=k, where=counts > 0)))
        for idx in np.argsort(-counts, kind="stable"):
            if counts[idx] > best[0]:
                best = (int(counts[idx]), int(batch[idx]))
            if not _valid(int(counts[idx]), unit):
                continue
            if whole:
                return remaining[inside[idx]]
            members = _members(vec, energy, remaining, ref, int(batch[idx]))
            if _valid(members.size, unit):
                return members
    if state["strict"] and floor < unit:
        # An exact line class lies in every defined screened plane, so it has at most ``floor``
        # columns: too few to be a class, and the line test over every position is skipped.
        raise NoRankTwoOrder(f"with groups of {unit} columns, column {ref}'s plane holds at most {max(best[0], 1)} "
                             f"of {k} columns on the screen (a class needs a positive multiple of {unit})")
    line = _members(vec, energy, remaining, ref, None)
    if _valid(line.size, unit):  # no plane: the reference's line is its class (partners were parallel)
        return line
    if state["strict"]:
        raise NoRankTwoOrder(f"with groups of {unit} columns, column {ref}'s plane holds at most {max(best[0], 1)} "
                             f"of {k} columns on the screen (a class needs a positive multiple of {unit})")
    state["consistent"] = False
    res = _full_residual(vec, energy, remaining, ref, best[1])
    return remaining[np.argsort(res, kind="stable")[:unit]]


def _members(vec: np.ndarray, energy: np.ndarray, remaining: np.ndarray, ref: int, partner: int | None) -> np.ndarray:
    """The remaining columns in span(ref, partner) at every position (both included); with no
    partner, those parallel to ref (its line)."""
    res = _full_residual(vec, energy, remaining, ref, partner)
    inside = (res <= _ZERO) | (remaining == ref) | (remaining == partner)
    return remaining[inside]


def _full_residual(vec: np.ndarray, energy: np.ndarray, remaining: np.ndarray, ref: int, partner: int | None) -> np.ndarray:
    """Residual of the remaining columns off span(ref, partner) (or ref's line), all positions."""
    if partner is None:
        return _line_residual(vec, energy, vec[:, ref])[remaining]
    return _residuals(vec, energy, vec[:, ref], vec[:, [partner]])[0][remaining]


def _line_residual(vec: np.ndarray, energy: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Relative energy ``(k,)`` off the line of ``a (B, 4)``, over the positions where a != 0."""
    a_norm = np.linalg.norm(a, axis=1)
    ok = a_norm > 0
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
    orthonormalized by Gram-Schmidt; positions where the two are nearly parallel (or ``a``
    vanishes) do not define a plane and are left out of both the residual and the energy.
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
    ok = ((a_norm > 0)[:, None] & (perp_norm > _SINE * c_norm)).T  # (C, B)
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
    far below the 1e-10 membership tolerance.
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
