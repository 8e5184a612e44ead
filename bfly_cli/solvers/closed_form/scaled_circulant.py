"""Row and column scalings of a circulant: ``T = diag(r) C diag(s)`` read back to ``C``.

Why a route of its own: the two-sided basis read-off (:mod:`.two_sided`) is blind to the
scalings, but not to the degeneracies that make the unscaled circulant hard: a singular filter
(the Laplacian ``[1, -2, 1]``: one zero eigenvalue), a symmetric short filter under noise (its
pairs of equal eigenvalues split at random). Measured before this module (8 seeds each, N = 64
and 256): the scaled Laplacian came back at 100-600x its noise or not at all, the 5-tap symmetric
filter at eps = 1e-6 failed 3 of 8. Once the scalings are divided out, the matrix is a plain
circulant plus (rescaled) noise, and :mod:`.circulant_fit` projects and denoises it: every filter
the unscaled route handles is then handled scaled.

**The scalings from ratios.** Along a wrapped diagonal ``T[i, i + m] = r_i s_{i+m} c_{-m}``, so
the ratio of two neighbours on it, ``T[i+1, i+1+m] / T[i, i+m] = rho_i sigma_{i+m}`` with
``rho_i = r_{i+1} / r_i`` and ``sigma_j = s_{j+1} / s_j``: the filter cancels. Each such ratio is
an edge between row node ``i`` and column node ``i + m`` of a bipartite graph; ``rho`` and
``sigma`` follow by walking a spanning tree of the strongest edges (weights: the smaller of the
two entries, so noise-level entries are used last). A graph that falls into several components
(a filter whose taps share a common step, e.g. ``[1, 0, 1]``) leaves one free factor per
component, and that freedom is exactly a symmetry of ``T`` (scaling one component's rows up and
its columns down changes nothing): any choice is right. What remains is the global gauge
``rho -> lam rho``, ``sigma -> sigma / lam``: the scalings must be periodic (``prod rho = 1``,
``prod sigma = 1``), which fixes ``lam`` up to an N-th root of unity, a modulation that keeps a
circulant circulant.

Cost: the wrapped-diagonal energies in one pass over ``T`` (O(N^2)), the ratios on the
:data:`_OFFSETS` strongest diagonals (O(N)), a spanning tree of ``O(N)`` edges. The scalings are
then checked on every ratio; a matrix that is no scaled circulant fails that check before the
caller pays for the unscaled fit.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse
import scipy.sparse.csgraph

from .. import RouteUnavailable

_OFFSETS = 12  # strongest wrapped diagonals whose neighbour ratios link the scalings
_CHUNK = 256  # rows per pass over the doubled matrix (bounds the temporary to 256 x 2N)
_TINY = 1e-150  # entries below this (relative to the largest) carry no ratio


def row_column_scalings(t: np.ndarray, limit: float) -> tuple[np.ndarray, np.ndarray]:
    """``(r, s)`` with ``diag(1/r) T diag(1/s)`` circulant, read off ``T``'s wrapped diagonals.

    Raises :class:`RouteUnavailable` when the neighbour ratios disagree with any scalings by more
    than ``limit`` (relative, weighted by the entries' size): ``T`` is no scaled circulant.
    """
    n = t.shape[0]
    energy = _diagonal_energy(t)
    if not energy.max() > 0:
        raise RouteUnavailable("the matrix is zero")
    offsets = _strong_offsets(energy)
    rows = np.arange(n)
    values = np.stack([t[rows, (rows + m) % n] for m in offsets.tolist()], axis=1)  # (N, K)
    nxt = np.roll(values, -1, axis=0)
    weight = np.minimum(np.abs(values), np.abs(nxt))
    usable = weight > _TINY * float(np.abs(values).max())
    ratio = np.where(usable, nxt / np.where(usable, values, 1), 0)
    rho, sigma = _walk(ratio, weight, usable, offsets)
    _check(ratio, weight, usable, offsets, rho, sigma, limit)
    rho, sigma = _periodic(rho, sigma, np.iscomplexobj(t))
    return _accumulate(rho), _accumulate(sigma)


def _diagonal_energy(t: np.ndarray) -> np.ndarray:
    """``e[m] = sum_i |T[i, (i + m) mod N]|^2`` for every wrapped diagonal ``m``: each row chunk
    written twice side by side, read through a strided view (no N^2 fancy index)."""
    n = t.shape[0]
    energy = np.zeros(n)
    for k in range(0, n, _CHUNK):
        block = np.abs(t[k:k + _CHUNK]) ** 2
        doubled = np.concatenate([block, block], axis=1)
        step = doubled.strides
        # view[j, m] = doubled[j, k + j + m] = |T[k + j, (k + j + m) mod N]|^2
        view = np.lib.stride_tricks.as_strided(doubled[:, k:], shape=(block.shape[0], n),
                                               strides=(step[0] + step[1], step[1]), writeable=False)
        energy += view.sum(axis=0)
    return energy


def _strong_offsets(energy: np.ndarray) -> np.ndarray:
    """The :data:`_OFFSETS` wrapped diagonals of most energy (fewer if fewer are nonzero)."""
    order = np.argsort(-energy, kind="stable")[:_OFFSETS]
    return order[energy[order] > _TINY * energy[order[0]]]


def _walk(ratio: np.ndarray, weight: np.ndarray, usable: np.ndarray,
          offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``rho`` (rows) and ``sigma`` (columns) from the ratios along a maximum spanning forest.

    Nodes ``0..N-1`` are rows, ``N..2N-1`` columns; the edge of row ``i`` on offset ``m`` joins
    column ``i + m`` and carries ``rho_i sigma_{i+m}``. Each component's root gets 1 (its free
    factor is a symmetry of ``T``, see the module docstring).
    """
    n = ratio.shape[0]
    i, k = np.nonzero(usable)
    j = (i + offsets[k]) % n
    cost = float(weight[usable].max()) / weight[i, k]  # >= 1: the strongest edges cost least
    graph = scipy.sparse.coo_matrix((cost, (i, n + j)), shape=(2 * n, 2 * n)).tocsr()
    forest = scipy.sparse.csgraph.minimum_spanning_tree(graph)
    forest = forest + forest.T
    edge = {(int(a), int(b)): complex(ratio[a, c]) for a, b, c in zip(i.tolist(), j.tolist(), k.tolist())}
    value = np.ones(2 * n, dtype=np.complex128)
    seen = np.zeros(2 * n, dtype=bool)
    for root in range(2 * n):
        if seen[root]:
            continue
        order, parent = scipy.sparse.csgraph.breadth_first_order(forest, root, directed=False,
                                                                 return_predecessors=True)
        seen[order] = True
        for node in order[1:].tolist():
            up = int(parent[node])
            row, col = (up, node - n) if node >= n else (node, up - n)
            value[node] = edge[(row, col)] / value[up]
    return value[:n], value[n:]


def _periodic(rho: np.ndarray, sigma: np.ndarray, complex_: bool) -> tuple[np.ndarray, np.ndarray]:
    """The gauge with ``prod rho = prod sigma = 1``: the scalings then close around the cycle.

    The walk leaves ``rho lam``, ``sigma / lam`` for an unknown ``lam``; dividing ``rho`` by its
    geometric mean ``mu`` and multiplying ``sigma`` by it is the same gauge (the ratios
    ``rho_i sigma_j`` stay), and brings both products to 1 up to the noise, which the last division
    (a root of a number near 1) spreads evenly. Normalizing the two separately would pick unrelated
    N-th roots of unity for a complex ``T``: a modulation of rows but not of columns, no circulant.
    A real ``T`` must keep real scalings, which an odd number of sign changes rules out.
    """
    if not complex_:
        rho, sigma = rho.real, sigma.real
        if np.count_nonzero(rho < 0) % 2 or np.count_nonzero(sigma < 0) % 2:
            raise RouteUnavailable("screened out: the row or column scalings do not close around the cycle (sign)")
        mu = np.exp(np.mean(np.log(np.abs(rho))))
        sigma = sigma * mu
        return rho / mu, sigma / np.exp(np.mean(np.log(np.abs(sigma))))
    mu = np.exp(np.mean(np.log(rho)))
    sigma = sigma * mu
    total = np.sum(np.log(sigma))  # log of prod sigma, near 0 up to a multiple of 2 pi i
    total = complex(total.real, (total.imag + np.pi) % (2 * np.pi) - np.pi)
    return rho / mu, sigma / np.exp(total / sigma.size)


def _check(ratio: np.ndarray, weight: np.ndarray, usable: np.ndarray, offsets: np.ndarray,
           rho: np.ndarray, sigma: np.ndarray, limit: float) -> None:
    """Every neighbour ratio against ``rho_i sigma_{i+m}``, weighted by its entries' size."""
    n = rho.size
    j = (np.arange(n)[:, None] + offsets[None, :]) % n
    miss = np.abs(ratio - rho[:, None] * sigma[j]) * weight
    scale = float(np.linalg.norm(weight[usable] * np.abs(ratio[usable])))
    off = float(np.linalg.norm(miss[usable])) / max(scale, np.finfo(np.float64).tiny)
    if not off <= limit:  # NaN included
        raise RouteUnavailable(f"screened out: no row and column scalings of a circulant ({off:.1e} off on the "
                               "diagonal ratios)")


def _accumulate(ratios: np.ndarray) -> np.ndarray:
    """``x_0 = 1``, ``x_{i+1} = x_i ratios_i``: the scalings from their neighbour ratios (a sum of
    logarithms, so a long run of large or small ratios neither overflows nor underflows)."""
    logs = np.log(ratios.astype(np.complex128)) if np.iscomplexobj(ratios) else np.log(np.abs(ratios))
    cum = np.concatenate([[0], np.cumsum(logs[:-1])])
    if np.iscomplexobj(ratios):
        return np.exp(cum)
    sign = np.concatenate([[1.0], np.cumprod(np.sign(ratios[:-1]))])
    return sign * np.exp(cum)


def refine_scalings(t: np.ndarray, r: np.ndarray, s: np.ndarray,
                    circulant: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One alternating least-squares sweep of ``T ~ diag(r) C diag(s)`` for a fitted ``C``: each
    row's ``r_i`` against ``C diag(s)``, then each column's ``s_j`` against ``diag(r) C``.

    Why: the scalings read off the ratios are products of N neighbour ratios, whose rounding
    and noise add up along the cycle (1e-14 at N = 256 on a clean matrix); each least-squares
    scale sees its whole row or column instead, so the sweep brings them back to the noise.
    """
    model = circulant * s[None, :]
    r = np.einsum("ij,ij->i", model.conj(), t) / np.einsum("ij,ij->i", model.conj(), model).real
    model = r[:, None] * circulant
    s = np.einsum("ij,ij->j", model.conj(), t) / np.einsum("ij,ij->j", model.conj(), model).real
    return r, s
