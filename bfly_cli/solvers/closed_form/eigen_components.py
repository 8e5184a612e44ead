"""The reference frame ``G_0`` of every component of a transport forest (:mod:`.eigenbasis`).

Within a component (tree gauge) every block is ``G_0 diag(x, y) G_0^-1``; components are joined
only by rank-one blocks. Shared by the similarity read-off (:mod:`.eigenbasis`) and the two-sided
one (:mod:`.two_sided`), where rows and columns are separate nodes.
"""

from __future__ import annotations

import numpy as np

from .block_algebra import TIE, canonical_order, column_gauge, inv2, sq

ROUNDING = 64 * np.finfo(np.float64).eps  # relative size of what rounding alone leaves behind
NOISE_MARGIN = 10.0  # a block within this factor of the noise is no link, a frame within it no frame
_NILPOTENT = 1e-8  # |det K| / ||K||^2 below which K has no two eigenvectors (a frame of condition > ~1e4)
_GAP = 1e-4  # second/first singular value (energy) of the traceless fit below which K is real
_MAX_COMPONENTS = 16  # components aligned through their joining blocks; the rest keep their own frame
_RANK_ONE = 1e-6  # |det| / ||block||^2 under which a joining block counts as rank one (noise included)


def reference_frames(tilde: np.ndarray, root_rows: np.ndarray, root_cols: np.ndarray, order: np.ndarray,
                      slots: int, block_noise: np.ndarray) -> np.ndarray:
    """``G_0`` of every component ``(K, slots, 2, 2)``, indexed by its root node.

    Within a component (tree gauge) every block is ``G_0 diag(x, y) G_0^-1``: the vectors
    ``(t00 - t11, t01, t10)`` of its blocks are multiples of one ``(2k, k01, k10)``, whose ``K``
    has the eigenvectors ``G_0`` (:func:`_traceless_fit`). Components are then fixed one after
    the other in visiting order (:func:`_align`): the blocks that join them to the components
    already fixed (rank one, or they would have joined the tree) say which column goes with which
    half, and give the frame outright where the component's own blocks left it free. Past
    :data:`_MAX_COMPONENTS` in one problem a component keeps its own (canonical) frame.
    ``root_rows`` ``(K, h)`` and ``root_cols`` are the roots of the row and column pairs (the same
    array for a similarity; rows and columns are distinct nodes for :mod:`.two_sided`).
    """
    cand, determined = _traceless_fit(tilde, root_rows, root_cols, slots, block_noise)
    h = root_rows.shape[1]
    several = np.nonzero(np.any(root_rows, axis=1) | np.any(root_cols, axis=1))[0]
    for k in several:
        for r in np.unique(root_rows[k])[:_MAX_COMPONENTS]:
            if not determined[k, r]:
                found = _two_lines(tilde[:, :, k], root_rows[k] == r, root_cols[k] == r)
                if found is not None:
                    cand[k, r], determined[k, r] = found, True
    frames = np.where(determined[..., None, None], cand, np.eye(2))
    for k in several:
        node_root = np.concatenate([root_rows[k], root_cols[k]]) if slots > h else root_rows[k]
        firsts = order[k][node_root[order[k]] == order[k]]
        fixed = np.zeros(slots, dtype=bool)
        fixed[firsts[0]] = True
        for r in firsts[1:_MAX_COMPONENTS]:
            sides = [(root_rows[k] == r, fixed[root_rows[k]]), (root_cols[k] == r, fixed[root_cols[k]])]
            (rows_in, rows_known), (cols_in, cols_known) = [(np.nonzero(i)[0], np.nonzero(f)[0]) for i, f in sides]
            known_frames = frames[k, root_rows[k, rows_known]], frames[k, root_cols[k, cols_known]]
            frames[k, r] = _align(tilde[:, :, k], (rows_in, cols_in), (rows_known, cols_known), known_frames,
                                  cand[k, r], bool(determined[k, r]))
            fixed[r] = True
    return frames


def _traceless_fit(tilde: np.ndarray, root_rows: np.ndarray, root_cols: np.ndarray, slots: int,
                   block_noise: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per component (indexed by its root): the canonical ``G_0`` and whether the blocks fix it.

    The dominant direction of the traceless vectors (3x3 Gram matrix over the component's own
    blocks) fixes ``G_0`` when it stands out: above rounding and :data:`NOISE_MARGIN` times the
    noise its blocks hold (``block_noise`` each), and the second direction under :data:`_GAP` of
    it (otherwise it is noise, or the halves are equal copies and ``G_0`` is free).
    """
    count = root_rows.shape[0]
    ks = np.arange(count)[:, None]
    vec = np.stack([tilde[0, 0] - tilde[1, 1], tilde[0, 1], tilde[1, 0]], axis=-1)  # (K, b, b', 3)
    energy_rows = sum(sq(tilde[i, j]) for i in range(2) for j in range(2))  # (K, b, b')
    members = np.full(root_rows.shape, float(root_cols.shape[1]))
    if np.any(root_rows) or np.any(root_cols):
        same = root_rows[:, :, None] == root_cols[:, None, :]
        vec = vec * same[..., None]
        energy_rows = energy_rows * same
        members = same.sum(axis=-1).astype(float)
    gram = np.zeros((count, slots, 3, 3), dtype=np.complex128)
    np.add.at(gram, (ks, root_rows), np.swapaxes(vec, -1, -2) @ vec.conj())
    energy = np.zeros((count, slots))
    np.add.at(energy, (ks, root_rows), energy_rows.sum(axis=-1))
    noise_energy = np.zeros((count, slots))
    np.add.at(noise_energy, (ks, root_rows), members * (NOISE_MARGIN * block_noise[:, None]) ** 2)
    vals, vecs = np.linalg.eigh(gram)
    top = vecs[..., :, 2]
    k = np.stack([np.stack([top[..., 0] / 2, top[..., 1]], -1), np.stack([top[..., 2], -top[..., 0] / 2], -1)], -2)
    strong = vals[..., 2] > np.maximum((ROUNDING**2) * energy, noise_energy)
    # A K that is (nearly) nilpotent has (nearly) one eigenvector: no invertible G_0 gives it, so it
    # is noise (a degenerate pair whose split noise dominates), and its frame would be singular.
    k_det = np.abs(k[..., 0, 0] * k[..., 1, 1] - k[..., 0, 1] * k[..., 1, 0])
    diagonalizable = k_det > _NILPOTENT * np.sum(sq(k), axis=(-2, -1))
    determined = strong & diagonalizable & (vals[..., 1] < _GAP * vals[..., 2])
    cand = np.broadcast_to(np.eye(2, dtype=np.complex128), (count, slots, 2, 2)).copy()
    if np.any(determined):
        _, eigvec = np.linalg.eig(k[determined])
        cand[determined] = canonical_order(column_gauge(eigvec))
    return cand, determined


def _two_lines(tilde: np.ndarray, rows_in: np.ndarray, cols_in: np.ndarray) -> np.ndarray | None:
    """Frame of a component whose own blocks leave it free, from its rank-one joining blocks.

    A joining block ``X_d diag(x, 0) X_c^-1`` (rows in the component d) has the range ``X_d e_0``
    whatever ``X_c`` is; one ``X_c diag(x, 0) X_d^-1`` (columns in d) has a column of ``X_d`` as
    its kernel. All those directions lie on the two lines of ``X_d``'s columns: a pair of lines is
    the zero set of one quadratic form ``w^T M w``, fitted by least squares (the smallest
    eigenvector of a 3x3 Gram matrix of ``(w0^2, sqrt2 w0 w1, w1^2)``) and factored. None when the
    directions do not single out two lines. Only blocks that are rank one (:func:`_rank_one`) speak.
    """
    ranges = tilde[:, :, rows_in][:, :, :, ~cols_in].reshape(2, 2, -1)
    kernels = tilde[:, :, ~rows_in][:, :, :, cols_in].reshape(2, 2, -1)
    pick = np.sum(sq(ranges[:, 0]), axis=0) >= np.sum(sq(ranges[:, 1]), axis=0)
    along = np.where(pick, ranges[:, 0], ranges[:, 1])  # (2, M): the larger column spans the range
    wide = np.sum(sq(kernels[0]), axis=0) >= np.sum(sq(kernels[1]), axis=0)
    row = np.where(wide, kernels[0], kernels[1])  # the larger row; the kernel is orthogonal to it
    vectors = np.concatenate([along, np.stack([row[1], -row[0]])], axis=1)
    vectors = vectors[:, np.concatenate([_rank_one(ranges), _rank_one(kernels)])]
    phi = np.stack([vectors[0] ** 2, np.sqrt(2) * vectors[0] * vectors[1], vectors[1] ** 2])
    gram = phi.conj() @ phi.T
    vals, vecs = np.linalg.eigh(gram)
    if not (vals[1] > (ROUNDING**2) * vals[2] and vals[0] < _GAP * vals[1]):
        return None
    m0, m01, m2 = vecs[0, 0], vecs[1, 0] / np.sqrt(2), vecs[2, 0]
    swap = abs(m2) < abs(m0)
    a, b, c = (m0, 2 * m01, m2) if swap else (m2, 2 * m01, m0)
    roots = np.roots([a, b, c])
    if roots.size != 2 or abs(roots[0] - roots[1]) <= TIE * (1 + abs(roots).max()):
        return None
    lines = np.array([[r, 1.0] if swap else [1.0, r] for r in roots], dtype=np.complex128).T
    return canonical_order(column_gauge(lines))


def _rank_one(m: np.ndarray) -> np.ndarray:
    """Which of the 2x2 matrices ``(2, 2, M)`` are nonzero and rank one up to :data:`_RANK_ONE`."""
    det = np.abs(m[0, 0] * m[1, 1] - m[0, 1] * m[1, 0])
    fro2 = np.sum(sq(m), axis=(0, 1))
    return (fro2 > 0) & (det <= _RANK_ONE * fro2)


def _align(tilde: np.ndarray, inside: tuple[np.ndarray, np.ndarray], known: tuple[np.ndarray, np.ndarray],
           known_frames: tuple[np.ndarray, np.ndarray], cand: np.ndarray, determined: bool) -> np.ndarray:
    """Frame of one component from the blocks joining it to the fixed ones.

    ``inside`` and ``known`` are (row pairs, column pairs) of the component and of the fixed
    components, ``known_frames`` the latter's frames. ``A_dc F_c`` holds the columns of ``G_d``
    (column evidence); ``F_c^-1 A_cd`` holds the rows of ``G_d^-1``, and row i is orthogonal to
    column 1 - i. A component whose own blocks fixed its frame (``determined``) only takes the
    column order from this evidence; a free one takes the evidence's directions where they stand
    out (else the identity).
    """
    into = tilde[:, :, inside[0]][:, :, :, known[1]]  # A_dc: (2, 2, s, f)
    out_of = tilde[:, :, known[0]][:, :, :, inside[1]]  # A_cd: (2, 2, f, s)
    cols = np.einsum("ijbx,xjn->nbxi", into, known_frames[1]).reshape(2, -1, 2)
    rows = np.einsum("xij,jnxb->ixbn", inv2(known_frames[0]), out_of).reshape(2, -1, 2)
    perp = np.stack([rows[..., 1], -rows[..., 0]], axis=-1)[::-1]  # row 1 - n -> along column n
    gram = np.stack([_outer_sum(cols[n]) + _outer_sum(perp[n]) for n in range(2)])  # (column, 2, 2)
    if determined:
        straight = sum(np.vdot(cand[:, n], gram[n] @ cand[:, n]).real for n in range(2))
        crossed = sum(np.vdot(cand[:, 1 - n], gram[n] @ cand[:, 1 - n]).real for n in range(2))
        return cand[:, ::-1].copy() if crossed > straight else cand
    vals, vecs = np.linalg.eigh(gram)
    if np.all(vals[:, 1] > 0) and np.all(vals[:, 0] < _GAP * vals[:, 1]):
        return column_gauge(vecs[:, :, 1].T)
    return np.eye(2, dtype=np.complex128)


def _outer_sum(v: np.ndarray) -> np.ndarray:
    """``sum_r v_r v_r^H`` over the rows of ``v`` ``(R, 2)``."""
    return v.T @ v.conj()
