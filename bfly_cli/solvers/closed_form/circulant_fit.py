"""A circulant read off a matrix whose columns are cyclic shifts of one vector, and its noise.

``T = C Q`` (``C`` circulant, ``Q`` a column permutation) has columns ``T[:, j] = roll(c, s_j)``:
every column is a cyclic shift of the first one. The shift of each column against column 0 is
the peak of their circular cross-correlation (FFTs, O(N^2 log N) in all); it is a margin
decision, not a tie test: the peak stands ``||c||^2 - max_d Re<roll(c, d), c>`` above the rest,
O(||c||^2) for any filter that is not (nearly) periodic, while the noise moves it by
O(eps ||c||^2). Sorting the columns by their shift gives ``T[:, order]``, a circulant plus noise.

**Projection.** The orthogonal projection of ``T[:, order]`` on the circulants averages its
wrapped diagonals: ``c_hat = mean_k roll(T[:, order[k]], -k)``. What is left, ``spread``, is the
part of the noise outside the circulants (all of it but a 1/N share), so the projection is the
least-squares fit of the class and ``spread`` measures the input's noise.

**Denoising inside the noise.** The projection's own filter still holds the noise's circulant
share, ``||E|| / N`` in norm: a symmetric filter comes back with ``c[r + m] != c[r - m]`` by that
much, which splits every pair of equal eigenvalues by noise, and a short filter comes back dense
with noise-level taps. Both defeat an eigenbasis read-off that is exact on the clean filter
(:mod:`.eigenbasis`: split degenerate pairs are read at the noise's mercy, and taps several
decades below the rest look like noise blocks). Changing the filter by ``delta`` changes the
matrix by ``sqrt(N) ||delta||``; so taps within :data:`_TAP_SIGMAS` deviations of the per-tap
noise are zeroed (at worst ``5 ||E|| / sqrt(N)``, so the rel_error is at most
``sqrt(1 + 25 / N)`` times the projection's, in practice 1.00x), and the odd part about the
filter's axis is dropped when it is within the noise expected of it (:func:`_even_axis`).

**Rotations.** ``circulant(roll(c, -r)) = T[:, roll(order, r)]``: the same matrix, any ``r``.
The read-off prefers some (:meth:`CirculantFit.rotations`); the caller tries them in turn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft

from .. import RouteUnavailable

_SCREEN_COLUMNS = 8  # columns checked before the whole matrix is aligned
_CHUNK = 256  # columns per batch of FFTs and gathers (bounds the temporaries to N x 256)
_TAP_SIGMAS = 5.0  # a tap within this many noise deviations is zeroed (max of N noise taps: ~3.3 at N = 256)
_ODD_SIGMAS = 4.0  # the filter's odd part is dropped when within this many times its expected noise norm
_ROUNDING = 64 * np.finfo(np.float64).eps


@dataclass(frozen=True)
class CirculantFit:
    """``T[:, order] ~ circulant(filter)`` (``filter`` denoised: its noise-level taps zeroed);
    ``spread = ||T[:, order] - circulant(projection)||_F / ||T||_F``, the input's noise outside the
    circulants; ``sigma`` the noise expected in one tap of the filter."""

    order: np.ndarray
    filter: np.ndarray
    spread: float
    sigma: float
    in_order: bool  # the columns were already in cyclic order

    def rotations(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Candidate ``(order, filter)`` pairs, the same circulant at other rotations, best first.

        Why: ``circulant(roll(c, -r)) = T[:, roll(order, r)]`` for every ``r``, but the eigenbasis
        read-off is not equally happy with all of them: a short filter whose taps straddle a
        dyadic boundary (taps 3..5 of N, or a 12-tap filter centred on 0) leaves it without the
        links it needs, and it fails on the clean matrix. Measured on random filters of 2..33 taps
        (N = 64, 256): the causal rotation (support starting at 0) succeeds in 94 of 96, the
        next one in 93 of 96, the centred one in 47 of 96; a symmetric filter centred on its
        axis (even, so ``lam_k = lam_-k`` exactly, which the read-off handles) in 96 of 96. So an
        even filter (:func:`_even_axis`) comes first, then the causal rotation and its neighbours.
        """
        n = self.filter.size
        out: list[tuple[np.ndarray, np.ndarray]] = []
        axis = _even_axis(self.filter, self.sigma)
        if axis is not None:
            c = np.roll(self.filter, -axis)
            out.append((np.roll(self.order, axis), (c + np.roll(c[::-1], 1)) / 2))
        start = _support_start(self.filter)
        for r in (start, (start + 1) % n, (start - 1) % n):
            if r != axis:
                out.append((np.roll(self.order, r), np.roll(self.filter, -r)))
        return out


def fit_circulant_columns(t: np.ndarray, limit: float) -> CirculantFit:
    """Column order, denoised filter and noise of ``T`` read as a circulant with shuffled columns.

    Raises :class:`RouteUnavailable` when the columns are not distinct cyclic shifts of one vector
    to within ``limit`` (relative): a cheap screen on :data:`_SCREEN_COLUMNS` columns first, so a
    matrix of another class costs O(N log N) per screened column, not the whole alignment.
    """
    n = t.shape[0]
    total = float(np.linalg.norm(t))
    if total == 0.0:
        raise RouteUnavailable("the matrix is zero")
    real = not np.iscomplexobj(t)
    screen = np.unique(np.linspace(0, n - 1, min(_SCREEN_COLUMNS, n)).astype(np.int64))
    cols = np.ascontiguousarray(t[:, screen].T)
    spec0 = _spectrum(np.ascontiguousarray(t[:, 0]), real)
    _, spread = _align(cols, np.arange(screen.size), _shifts(cols, spec0, real))
    if not spread <= limit * float(np.linalg.norm(cols)):  # NaN included
        raise RouteUnavailable(f"columns are not cyclic shifts of one vector ({spread / total:.1e} off on a sample)")
    cols = np.ascontiguousarray(t.T)  # column j of T is row j here: FFTs and gathers run along memory
    order = np.arange(n)
    c, spread = _align_sorted(cols, order)  # columns already in cyclic order: no FFTs at all
    if not spread <= limit * total:
        shifts = np.concatenate([_shifts(cols[k:k + _CHUNK], spec0, real) for k in range(0, n, _CHUNK)])
        if np.bincount(shifts, minlength=n).max() != 1:
            raise RouteUnavailable("columns are not distinct cyclic shifts of one vector (two columns share a shift)")
        order = np.argsort(shifts)
        c, spread = _align_sorted(cols, order)
    if not spread <= limit * total:
        raise RouteUnavailable(f"columns are not cyclic shifts of one vector ({spread / total:.1e} off)")
    # noise per entry spread / N (spread = ||E|| (1 - 1/N)^(1/2)), per averaged tap / sqrt(N) more
    sigma = max(spread, _ROUNDING * total) / n / np.sqrt(n)
    c = np.where(np.abs(c) <= _TAP_SIGMAS * sigma, 0, c)
    return CirculantFit(order, c, spread / total, sigma, bool(np.array_equal(order, np.arange(n))))


def circulant_matrix(c: np.ndarray) -> np.ndarray:
    """``C[i, j] = c[(i - j) mod N]``, C-contiguous: a copy of a strided view of the reversed
    filter written twice (row ``i`` is ``d[N-1-i : 2N-1-i]``), 5-10x faster than an N^2 gather."""
    n = c.size
    doubled = np.concatenate([c[::-1], c[::-1]])  # doubled[m] = c[(N - 1 - m) mod N]
    step = doubled.strides[0]
    view = np.lib.stride_tricks.as_strided(doubled[n - 1:], shape=(n, n), strides=(-step, step), writeable=False)
    return np.ascontiguousarray(view)


def _spectrum(x: np.ndarray, real: bool) -> np.ndarray:
    """Spectra along the last axis (``rfft`` for a real input: half the work)."""
    return scipy.fft.rfft(x, axis=-1) if real else scipy.fft.fft(x, axis=-1)


def _shifts(rows: np.ndarray, spec0: np.ndarray, real: bool) -> np.ndarray:
    """Per row ``x`` (a column of T): the ``s`` maximizing ``Re <x, roll(x0, s)>`` (the peak of
    the circular cross-correlation with column 0, whose spectrum is ``spec0``)."""
    n = rows.shape[-1]
    product = _spectrum(rows, real) * np.conj(spec0)
    corr = scipy.fft.irfft(product, n=n, axis=-1) if real else scipy.fft.ifft(product, axis=-1).real
    return np.argmax(corr, axis=-1).astype(np.int64)


def _align(rows: np.ndarray, which: np.ndarray, shifts: np.ndarray) -> tuple[np.ndarray, float]:
    """Mean of the vectors ``rows[which]`` (columns of T) rolled back by their ``shifts``, and the
    Frobenius distance of those vectors to that mean rolled forward. Two passes over the rows,
    each a pair of contiguous slices (a fancy-indexed gather of N^2 entries is 10x slower); the
    mean is the first vector plus the mean deviation, so its rounding is relative to the noise."""
    n = rows.shape[-1]
    first = np.roll(rows[which[0]], -int(shifts[0]))
    acc = np.zeros_like(first)
    for j, s in zip(which.tolist(), (shifts % n).tolist()):  # rolled back: x[s:], then x[:s]
        acc[:n - s] += rows[j, s:] - first[:n - s]
        acc[n - s:] += rows[j, :s] - first[n - s:]
    mean = first + acc / which.size
    dist2 = 0.0
    for j, s in zip(which.tolist(), (shifts % n).tolist()):
        dist2 += _sq_norm(rows[j, s:] - mean[:n - s]) + _sq_norm(rows[j, :s] - mean[n - s:])
    return mean, float(np.sqrt(dist2))


def _align_sorted(rows: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, float]:
    """:func:`_align` for ``which = order``, ``shifts = 0..N-1``, vectorized: vector j rolled back by
    j is row j of a strided view of the chunk written twice side by side (no per-row Python loop)."""
    n = rows.shape[-1]
    first = rows[order[0]]
    acc = np.zeros_like(first)
    views = []
    for k in range(0, n, _CHUNK):
        doubled = np.concatenate([rows[order[k:k + _CHUNK]]] * 2, axis=1)  # (C, 2n)
        step = doubled.strides
        # view[j, m] = doubled[j, k + j + m] = x_j[(m + k + j) mod n]
        view = np.lib.stride_tricks.as_strided(doubled[:, k:], shape=(doubled.shape[0], n),
                                               strides=(step[0] + step[1], step[1]), writeable=False)
        acc += (view - first).sum(axis=0)
        views.append(view)
    mean = first + acc / n
    dist2 = sum(_sq_norm((view - mean).ravel()) for view in views)
    return mean, float(np.sqrt(dist2))


def _sq_norm(x: np.ndarray) -> float:
    return float(np.vdot(x, x).real)


def _even_axis(c: np.ndarray, sigma: float) -> int | None:
    """The ``r`` with ``c[r + m] = c[r - m]`` to within the noise, or None.

    ``Re sum_m c[m] conj(c[u - m])`` peaks at ``u = 2r`` with the value ``||c||^2`` exactly when
    the filter is even about ``r`` (Cauchy-Schwarz); one FFT finds ``u``. An odd ``u`` is a
    half-integer axis (an even number of taps), which no rotation makes even. Of the two axes
    ``u / 2`` and ``u / 2 + N / 2`` the one nearer the filter's mass is taken. The odd part about
    it must be within :data:`_ODD_SIGMAS` times its expected noise norm ``sigma sqrt(N / 2)``.
    """
    n = c.size
    spec = scipy.fft.fft(c)
    u = int(np.argmax((scipy.fft.ifft(spec * scipy.fft.fft(np.conj(c)))).real))
    if u % 2:
        return None
    axes = (u // 2, (u // 2 + n // 2) % n)
    dist = np.minimum(np.arange(n), n - np.arange(n)).astype(np.float64) ** 2
    mass = np.abs(c) ** 2
    axis = min(axes, key=lambda r: float(np.dot(np.roll(mass, -r), dist)))
    centred = np.roll(c, -axis)
    odd = (centred - np.roll(centred[::-1], 1)) / 2
    return axis if float(np.linalg.norm(odd)) <= _ODD_SIGMAS * sigma * np.sqrt(n / 2) else None


def _support_start(c: np.ndarray) -> int:
    """First tap after the longest circular run of zero taps (0 for a filter without zeros)."""
    nz = np.flatnonzero(c)
    if nz.size in (0, c.size):
        return 0
    gaps = np.diff(np.append(nz, nz[0] + c.size))
    return int(nz[(int(np.argmax(gaps)) + 1) % nz.size])
