"""The B.P route: a discovered column order and closed-form twiddles, certified exact.

The order comes from :func:`_exact_bp_order` (one pass per level, rejecting a matrix at the first
level where no rank-one split exists), else from the general discovery in :mod:`.bp_order`
guarded by a per-level rank-one certificate; the twiddles from :mod:`.hierarchical`.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from ...factors import Step
from ...metrics import NEAR_EXACT
from .. import RouteUnavailable
from .bp_order import discover_permutation
from .branch_rows import branch_row_orders
from ...chain_algebra import transpose_steps
from .hierarchical import factor_butterfly
from .row_pairing import discover_two_sided
from .serial_products import wide_product

_EXACT_SWEEPS = 3
# Squared relative residual a level may leave and still count as structured: the structure plus
# noise up to NEAR_EXACT. Unstructured matrices leave O(0.1-1), so the margin is still 1e5.
_STRUCTURED = NEAR_EXACT**2
_PROBE_SEED = 20240612


def solve_bp(matrix: np.ndarray) -> tuple[list[Step], dict[str, Any]]:
    """B.P, or ``P_out B P_in`` when the rows are permuted too: discovered orders, closed-form twiddles.

    The column order comes from :func:`_exact_bp_order`, which rejects a matrix at the first level
    where no rank-one split exists, so the full solve (whose rank-one fits iterate to their cap on
    blocks that are not rank one) is only paid by real B.P candidates. Only when a level is
    ambiguous (more than half of the columns parallel) does the general discovery run, guarded by
    the per-level certificate. A matrix rejected that way may still be a butterfly with its rows
    permuted: the transpose is tried first (:func:`_solve_transposed`), then a row order read
    off one rank-one branch (:func:`_by_branch`: O(N^2), then the one-sided discovery), and only
    then :mod:`.row_pairing`, which pairs the rows of every group at every level (steps
    ``[P_in, B, P_out]``, structure ``PBP``; ``bp_rows`` in the metadata says which). That is
    tried only when the very first split failed (or the certificate did): rows in another order
    break the first split, so a matrix whose first split holds with its rows in place (Hartley)
    is not searched again.
    """
    try:
        rows, cols = None, _one_sided_order(matrix)
    except RouteUnavailable as one_sided:
        if isinstance(one_sided, NotBP) and one_sided.split_size < matrix.shape[0]:
            raise  # the first split holds with the rows in place: a row permutation would break it
        transposed = _solve_transposed(matrix)
        if transposed is not None:
            return transposed
        try:
            rows, cols = _by_branch(matrix) or _certified(matrix, *discover_two_sided(matrix))
        except RouteUnavailable as two_sided:
            raise RouteUnavailable(f"{one_sided}; with the rows permuted too: {two_sided}") from None
        if np.array_equal(rows, np.arange(rows.size)):
            rows = None
    # The order is certified rank one at every level, so each fit converges in one sweep; the
    # small cap only bounds the cost if rounding keeps a block's direction moving.
    twiddle = factor_butterfly(matrix, max_iter=_EXACT_SWEEPS, rows=rows, cols=cols)
    steps = [Step("permutation", cols), Step("butterfly", twiddle)]
    if rows is None:
        return steps, {"bp_rows": "natural"}
    return steps + [Step("permutation", np.argsort(rows).astype(np.int64))], {"bp_rows": "permuted"}


def _solve_transposed(matrix: np.ndarray) -> tuple[list[Step], dict[str, Any]] | None:
    """``T = P_out B P_in`` from a one-sided B.P of ``T^T``, or None when ``T^T`` has none.

    Rows shuffled in a symmetric transform (DFT, Hadamard) are columns shuffled in its transpose,
    which the one-sided discovery orders at the clean solve's cost; the chain is transposed back
    exactly (:mod:`bfly_cli.chain_algebra`). Only a matrix whose transpose is no B.P either pays for
    the two-sided search of :mod:`.row_pairing`.
    """
    transposed = np.ascontiguousarray(matrix.T)  # the order's passes read rows: 1.4x faster than on the view
    try:
        cols = _one_sided_order(transposed)
    except RouteUnavailable:
        return None
    twiddle = factor_butterfly(transposed, max_iter=_EXACT_SWEEPS, cols=cols)
    steps = transpose_steps([Step("permutation", cols), Step("butterfly", twiddle)])
    return steps, {"bp_rows": "permuted"}


def _certified(matrix: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, cols)`` once :func:`_certify_rank1` accepts them (the branch's orders need no
    second certificate: :func:`_one_sided_order` certified every level)."""
    _certify_rank1(matrix, rows, cols)
    return rows, cols


def _by_branch(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``(rows, cols)`` from a row order read off one rank-one branch (:mod:`.branch_rows`), the
    columns then ordered by the one-sided discovery at the clean solve's cost; None when the
    matrix has no rank-one branch (the full two-sided pairing then decides).

    A B.P's every group is rank one, so the first path is a valid row order for it. When that
    order holds the first split and a split below it fails (:class:`NotBP` with a smaller
    ``split_size``: a Hartley matrix, rank one on top and rank two below), no row order makes the
    matrix a B.P, and :class:`NotBP` is raised instead of running the two-sided pairing, which
    could only fail too (2.6 s of a 14 s solve for a Hartley matrix shuffled on both sides at
    N = 4096).
    """
    for rows in branch_row_orders(matrix, limit=1):
        try:
            return rows, _one_sided_order(matrix[rows])
        except NotBP as exc:
            if exc.split_size < matrix.shape[0]:
                raise NotBP(f"rows ordered along a rank-one branch: {exc}", exc.split_size) from None
        except RouteUnavailable:
            continue
    return None


def _one_sided_order(matrix: np.ndarray) -> np.ndarray:
    """The column order of a B.P with its rows in place, certified rank one at every level.

    The level-by-level test runs at rounding level first (decisive and fast for exact inputs: a
    Hartley matrix, whose top split is rank one, fails at its second level), then, only when that
    fails, with the noise tolerance. A matrix that is ambiguous only under the noise tolerance
    (more than half of the columns within 1e-3 of parallel) but no B.P at rounding level is
    rejected with the rounding-level reason rather than sent to the general discovery.
    """
    _screen_first_split(matrix)
    try:
        perm = _exact_bp_order(matrix, _rounding_tol(matrix))
    except NotBP as tight:
        perm = _exact_bp_order(matrix, _STRUCTURED)  # raises NotBP when noise does not explain it either
        if perm is None:
            raise tight from None
    if perm is None:
        perm = discover_permutation(matrix)
        _certify_rank1(matrix, cols=perm)
    return perm


_SCREEN_PAIRS = 64  # row pairs on which the first split is screened before the full test
# The screen's tolerance is this much looser (in amplitude) than the noise tolerance: on 64 pairs
# a column's noise averages less than on N/2, and a noisy B.P must never be rejected here;
# a shuffled matrix's columns sit at O(1), far above it either way.
_SCREEN_MARGIN = 10.0


def _screen_first_split(matrix: np.ndarray) -> None:
    """Raise :class:`NotBP` when the first split fails already on a sample of the row pairs.

    A column parallel to the reference at every pair is parallel at the sampled ones, so fewer
    than N/2 columns parallel on the sample (at a tolerance looser than both of the full test's)
    proves the full test fails at both. Rows in another order (a matrix shuffled on both
    sides, or its transpose) are rejected from ``_SCREEN_PAIRS`` rows instead of two passes over
    the whole matrix, and a transposed view is read without a transposed copy. A column whose
    sampled 2-vectors vanish counts as parallel, so a sparse B.P is never rejected here.
    """
    n = matrix.shape[0]
    if n // 2 <= _SCREEN_PAIRS:
        return
    pairs = np.sort(np.random.default_rng(_PROBE_SEED + n).choice(n // 2, _SCREEN_PAIRS, replace=False))
    vec = np.stack([matrix[pairs], matrix[pairs + n // 2]])[None]  # (1, 2, s, N)
    weights = _pair_weights(_SCREEN_PAIRS, np.iscomplexobj(matrix))
    count = int(_parallel_to_strongest(vec, weights, _SCREEN_MARGIN**2 * _STRUCTURED).sum())
    if count < n // 2:
        raise NotBP(f"not B.P: at split size {n}, only {count} of {n} columns share a direction on "
                    f"{_SCREEN_PAIRS} sampled row pairs (a B.P needs {n // 2})", n)


def _rounding_tol(matrix: np.ndarray) -> float:
    """The squared-ratio tolerance of a matrix exact to its working precision (1e-12 in float64)."""
    from ...metrics import exact_threshold

    return exact_threshold(str(np.real(np.empty(0, matrix.dtype)).dtype))


class NotBP(RouteUnavailable):
    """Not B.P with the rows in place; ``split_size`` is the size of the split that failed
    (N: the very first one, which is where a row permutation shows)."""

    def __init__(self, message: str, split_size: int) -> None:
        super().__init__(message)
        self.split_size = split_size


def _exact_bp_order(matrix: np.ndarray, tol: float = _STRUCTURED) -> np.ndarray | None:
    """The B.P column order when every level splits cleanly; None when a level is ambiguous.

    In ``B P`` the last stage mixes rows ``b`` and ``b + N/2`` and the rest is block diagonal,
    so at every pair ``b`` the 2-vectors ``(T[b, j], T[b + N/2, j])`` of one half of the columns
    are parallel to one direction and those of the other half to another. Per level: the half
    parallel to the strongest column (:func:`_parallel_to_strongest`), then each half projected
    onto its direction (the half-size problems), whose Gram matrices also certify that both
    halves really are parallel; all groups of a level batched. Fewer than half parallel, or a
    half that is not: not B.P (raises). The tolerances (``_STRUCTURED`` on squared ratios) only reject
    matrices far from any B.P.
    """
    n = matrix.shape[0]
    mats, cols = np.ascontiguousarray(matrix)[None], np.arange(n)[None]
    weights = _pair_weights(n // 2, np.iscomplexobj(matrix))
    while mats.shape[-1] > 2:
        groups, m, _ = mats.shape
        vec = mats.reshape(groups, 2, m // 2, m)
        parallel = _parallel_to_strongest(vec, weights[: m // 2], tol)
        count = parallel.sum(axis=1)
        if np.any(count < m // 2):
            raise NotBP(f"not B.P: at split size {m}, only {int(count.min())} of {m} columns "
                        f"share a direction (a B.P needs {m // 2})", m)
        if np.any(count > m // 2):
            return None
        halves = []
        for members in (np.nonzero(parallel)[1], np.nonzero(~parallel)[1]):
            members = members.reshape(groups, m // 2)
            coords, spread = _project_pairs(np.take_along_axis(vec, members[:, None, None, :], axis=3))
            if spread > tol:
                raise NotBP(f"not B.P: at split size {m}, a half is not parallel", m)
            halves.append((coords, np.take_along_axis(cols, members, axis=1)))
        mats = np.stack([halves[0][0], halves[1][0]], axis=1).reshape(2 * groups, m // 2, m // 2)
        cols = np.stack([halves[0][1], halves[1][1]], axis=1).reshape(2 * groups, m // 2)
    return cols.reshape(-1).astype(np.int64)


def _pair_weights(count: int, complex_: bool) -> np.ndarray:
    """Two fixed random weights per row pair ``(count, 2)`` (complex for a complex matrix)."""
    rng = np.random.default_rng(_PROBE_SEED)
    weights = rng.standard_normal((count, 2))
    return weights + 1j * rng.standard_normal((count, 2)) if complex_ else weights


def _parallel_to_strongest(vec: np.ndarray, weights: np.ndarray, tol: float) -> np.ndarray:
    """``(G, k)`` bool: is column j's 2-vector parallel to the strongest column's at every pair?

    Parallel at every pair b means ``cross_b = r0_b v1_bj - r1_b v0_bj = 0`` for all b, tested
    through two random combinations ``sum_b w_b cross_b``: two matrix products with no
    temporaries, instead of N^2 cross products (a non-parallel column passes only if both
    random combinations cancel to 1e-6, which has probability ~1e-12). Each combination is
    compared with its Cauchy-Schwarz bound ``||w r|| ||v_j||``.
    """
    v0, v1 = vec[:, 0], vec[:, 1]
    energy = _column_energy(vec)  # (G, k)
    ref = np.take_along_axis(vec, np.argmax(energy, axis=1)[:, None, None, None], axis=3)[..., 0]
    u0 = ref[:, 0, :, None] * weights  # (G, m/2, 2)
    u1 = ref[:, 1, :, None] * weights
    combo = wide_product(np.swapaxes(u0, 1, 2), v1) - wide_product(np.swapaxes(u1, 1, 2), v0)  # (G, 2, k)
    bound = np.sqrt(np.sum(np.abs(u0) ** 2 + np.abs(u1) ** 2, axis=1))[:, :, None] * np.sqrt(energy)[:, None, :]
    return np.all(np.abs(combo) <= np.sqrt(tol) * bound, axis=1)


def _column_energy(vec: np.ndarray) -> np.ndarray:
    """``(G, k)``: sum over the first two axes of |vec|^2 for a C-contiguous ``(G, 2, B, k)``.

    A complex array is read through its float view (real and imaginary parts interleaved), so
    one einsum pass does it without a conjugated temporary.
    """
    if not np.iscomplexobj(vec):
        return np.einsum("gpbj,gpbj->gj", vec, vec)
    flat = np.ascontiguousarray(vec).view(np.finfo(vec.dtype).dtype)
    return np.einsum("gpbj,gpbj->gj", flat, flat).reshape(vec.shape[0], vec.shape[3], 2).sum(axis=2)


def _project_pairs(sub: np.ndarray) -> tuple[np.ndarray, float]:
    """``(G, m/2, h)``: each pair's 2-vectors as multiples of their common (dominant) direction,
    and the relative energy off those directions (rounding level when the half is parallel)."""
    v0, v1 = sub[:, 0], sub[:, 1]
    gram = np.empty((*v0.shape[:2], 2, 2), dtype=np.result_type(sub.dtype, np.float64))
    gram[..., 0, 0] = np.vecdot(v0, v0).real
    gram[..., 1, 1] = np.vecdot(v1, v1).real
    gram[..., 1, 0] = np.vecdot(v0, v1)  # sum_j conj(v0) v1
    gram[..., 0, 1] = gram[..., 1, 0].conj()
    vals, vecs = np.linalg.eigh(gram)
    spread = float(np.sum(np.maximum(vals[..., 0], 0.0)) / max(float(np.sum(vals)), np.finfo(np.float64).tiny))
    top = vecs[..., -1].conj()  # (G, m/2, 2)
    return top[..., 0, None] * v0 + top[..., 1, None] * v1, spread


def _certify_rank1(matrix: np.ndarray, rows: np.ndarray | None = None, cols: np.ndarray | None = None) -> None:
    """Raise unless every block of every split of ``matrix[rows][:, cols]`` is rank one.

    That is the exact-B.P condition itself (section 4 of the notes), tested with two fixed
    random probe vectors per block: the images of a rank-one block are parallel, so the 2x2
    Gram determinant of the two images vanishes. One pass over the matrix per level, far
    cheaper than the closed-form solve it guards on matrices that are not B.P. Each pass reads
    the ordered columns a slab at a time (:func:`_column_slabs`): no ordered copy of the matrix,
    and no images as large as it at the first level.
    """
    n = matrix.shape[0]
    levels = n.bit_length() - 1
    rng = np.random.default_rng(_PROBE_SEED)
    for lev in range(1, levels):
        hi, lo = n >> lev, 1 << lev
        probe = rng.standard_normal((lo, 2))
        det = scale = 0.0
        for part in _column_slabs(matrix, rows, cols, lo):  # (N, groups * lo): whole column groups a
            images = part.reshape(hi, lo, -1, lo) @ probe  # (c, b, a, 2)
            gram = np.einsum("cbap,cbaq->bapq", images.conj(), images)
            det += float(np.sum(np.abs(gram[..., 0, 0] * gram[..., 1, 1] - np.abs(gram[..., 0, 1]) ** 2)))
            scale += float(np.sum(np.abs(gram[..., 0, 0] * gram[..., 1, 1])))
        if det > _STRUCTURED * scale:
            raise RouteUnavailable(f"not B.P: the blocks of split level {lev} are not rank one "
                                   "under the discovered order")


def _column_slabs(matrix: np.ndarray, rows: np.ndarray | None, cols: np.ndarray | None,
                  group: int) -> Iterator[np.ndarray]:
    """``matrix[rows][:, cols]`` as column slabs of whole groups of ``group`` columns, about
    :data:`~bfly_cli.metrics.BLOCK_BYTES` each."""
    from ...metrics import block_slices

    n = matrix.shape[0]
    order = (np.arange(n) if cols is None else np.asarray(cols)).reshape(-1, group)
    for groups in block_slices(n // group, n * group * matrix.itemsize):
        picked = order[groups].ravel()
        yield matrix[:, picked] if rows is None else matrix[np.ix_(rows, picked)]
