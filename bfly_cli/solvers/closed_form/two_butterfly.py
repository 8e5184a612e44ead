"""Two butterflies: ``T = W . R . B2 . P`` for matrices diagonalized by a butterfly basis.

A circulant (convolution) ``C = F^-1 diag(F c) F`` is the typical member, but nothing here knows
about Fourier: the route only assumes ``T = W diag(lam) W^-1`` up to an unknown column or row
permutation, with ``W`` a butterfly.

1. **The basis W.** :func:`~.eigenbasis.butterfly_eigenbasis` reads ``W``'s twiddles off a matrix
   ``A = W diag(.) W^-1`` in O(N^2) per level, from the 2x2 blocks alone (repeated eigenvalues and
   short filters included: see that module).
2. **Circulants first.** When the columns of ``T`` are cyclic shifts of one vector (a circulant,
   its columns in any order), :mod:`.circulant_fit` gives the column order and the least-squares
   circulant, denoised within the noise (symmetry and zero taps restored), and ``W`` is read off
   that clean matrix: ``direct`` when the columns were in order, ``column-shuffled`` otherwise
   (``row-shuffled`` and ``both-shuffled`` reach it through ``T^T`` and a cyclic row order). Noise
   then costs nothing but itself (rel_error ~ eps) even where it splits repeated eigenvalues.
   **Candidates.** ``direct``: ``A = T``. ``column-shuffled`` (``T = C Q``): ``T f(T)^H = C f(C)^H``
   for any entrywise ``f`` because the permutation cancels inside the product; for a group
   convolution (circulant, dyadic) ``f(C)`` stays in the same commutative algebra, so
   ``A = T T^H + alpha T f(T)^H`` with ``f(x) = x^2 - mean`` shares ``W`` (the second term splits
   the pairs ``|lam_k| = |lam_-k|`` that ``T T^H`` alone leaves degenerate). ``row-shuffled``
   (``T = Q C``): ``T^T = C^T Q^T`` is column-shuffled, and the factorization of ``T^T`` is
   transposed back (:mod:`bfly_cli.chain_algebra`). ``scaled-circulant`` (``T = D1 C D2``, tried
   first): the scalings read off the ratios along the wrapped diagonals and divided out
   (:mod:`.scaled_circulant`), then the circulant fit. ``scaled`` (``T = D1 C D2``, or more
   generally ``T = W1 diag(lam) W2^-1``): a row basis and a column basis read off ``T`` together
   (:mod:`.two_sided`), blind to the scalings, which fold into the outer butterflies.
3. **The rest.** ``K = W^-1 T``. ``W^-1 = R B' R`` (:mod:`.butterfly_inverse`), so for ``direct``
   ``R K = (R lam R) B' R``: the eigenvalues are projected by least squares (``lam_k`` the
   diagonal of ``W^-1 T W``, which the basis read-off ends with: exact for the structure, the
   orthogonal projection of the noise for a unitary ``W``) and folded into ``B'``, a structured result with no fit at all. For a shuffle
   ``R K = (R lam R) B' (R Q)`` is factored as ``B2 . P`` by :func:`discover_permutation` and
   :func:`factor_butterfly` (whose rank-one fits project onto the structure).

Every candidate is measured on random probe vectors (``||M X - T X|| / ||T X||``); the first one
that explains ``T`` down to its own noise floor wins (probe error within :data:`_SETTLED` of the
basis residual, i.e. what is left is what the basis could not diagonalize either: the input's
noise), otherwise the best one, if it is at most :data:`GRACEFUL` (a noisy input's best
structured factors; ``auto`` compares them with the approximation route). Otherwise
:class:`RouteUnavailable` with each candidate's reason.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ... import kernel
from ...factors import Factors, Step, pair_positions
from .. import RouteUnavailable, checked_square, numerics
from .bp_order import discover_permutation
from .butterfly_inverse import apply_inverse, bit_reversal, inverse_twiddles
from .circulant_fit import CirculantFit, circulant_matrix, fit_circulant_columns
from .cyclic_order import cyclic_row_order, sorted_row_spread
from .eigenbasis import _pair_blocks, butterfly_eigenbasis
from .eigenbasis import _split_level as _eigen_level
from .hierarchical import factor_butterfly
from ...chain_algebra import transpose_steps
from .scaled_circulant import refine_scalings, row_column_scalings
from .two_sided import _split_level as _two_sided_level
from .two_sided import two_sided_basis

GRACEFUL = 1e-2  # probe error above which a candidate is not worth returning (structure/noise gap < 100)
SINGULAR_BLOCK = 1e-13  # |det| / |block|^2 below which W is not invertible
_STOP = 5 * GRACEFUL  # basis residual at which a candidate is abandoned (it cannot reach GRACEFUL)
_SETTLED = 10.0  # probe error / basis residual below which a candidate explains all but the noise
_ROUNDING = 1e-13  # probe error that is float64 rounding whatever the residual says
_PROBES = 4
_FIT_ROUNDING = 1e-14  # probe error of a fitted circulant's factors that counts as exact (else the next rotation)
_CLEAN_BASIS = 1e-12  # basis residual of a fitted (noise-free) circulant above which its read-off failed
# Relative spread of the sorted rows of T T^H above which T is no circulant shuffled on both sides:
# the structure leaves its noise (eps <= 1e-3 gives ~1e-3), a random matrix 1e-2 (N = 16384) to 0.1.
_BOTH_SPREAD = 3e-3


def solve_two_butterfly(matrix: np.ndarray) -> tuple[list[Step], dict[str, Any]]:
    """Factor ``matrix`` as two butterflies (``W R B2 P``, or its transpose for shuffled rows).

    Raises :class:`RouteUnavailable` when no candidate reaches :data:`GRACEFUL`.
    """
    t = checked_square(matrix)
    reasons: list[str] = []
    best: tuple[str, list[Step], dict[str, Any]] | None = None
    fit = _circulant_fit(t)  # once: the direct and column-shuffled candidates both start from it
    row_fit = None if fit is not None else _circulant_fit(np.ascontiguousarray(t.T))  # once: row-shuffled's
    skip = _skipped(fit, row_fit)
    for name, solve in _ordered(fit, skip):
        if name in skip:
            reasons.append(f"{name}: {skip[name]}")
            continue
        try:
            if fit is None or name not in ("direct", "column-shuffled"):
                _screen(name, t)  # a circulant fit is its own screen (the shuffle-blind one can miss short filters)
            if name in ("direct", "column-shuffled"):
                steps, info = solve(t, fit)
            else:
                steps, info = solve(t, row_fit) if name == "row-shuffled" else solve(t)
        except RouteUnavailable as exc:
            reasons.append(f"{name}: {exc}")
            continue
        if best is None or info["probe_rel_error"] < best[2]["probe_rel_error"]:
            best = (name, steps, info)
        if info["probe_rel_error"] <= max(_SETTLED * info["eigen_residual"], _ROUNDING):
            break
        reasons.append(f"{name}: probe rel error {info['probe_rel_error']:.1e} above its noise floor")
    if best is None or best[2]["probe_rel_error"] > GRACEFUL:
        if best is not None:
            reasons.append(f"best probe rel error {best[2]['probe_rel_error']:.1e} > {GRACEFUL:g}")
        raise RouteUnavailable("two-butterfly route does not apply: " + "; ".join(reasons))
    name, steps, info = best
    extra = {"two_butterfly_basis": name, **info, "two_butterfly_noise_floor": info["probe_rel_error"],
             "rejected": [r for r in reasons if not r.startswith(name + ":")]}
    return _finish(steps, matrix), extra


def _skipped(fit: CirculantFit | None, row_fit: CirculantFit | None) -> dict[str, str]:
    """Candidates that cannot apply to a circulant shuffled on one side, with the reason.

    Columns that are cyclic shifts out of order are neither a similarity in this order nor
    two-sided; rows that are (``T^T``'s columns), not column-shuffled either. Skipping them saves
    the full read-offs (and the shuffle-blind N^3 products) that could only fail.
    """
    if fit is not None:
        if fit.in_order:
            return {"scaled-circulant": "a circulant: no scalings to divide out"}
        return dict.fromkeys(("direct", "scaled-circulant", "scaled"), "a circulant with shuffled columns")
    if row_fit is None:
        return {}
    return dict.fromkeys(("direct", "scaled-circulant", "scaled", "column-shuffled"), "a circulant with shuffled rows")


def _ordered(fit: CirculantFit | None, skip: dict[str, str]) -> tuple[tuple[str, Callable[..., Any]], ...]:
    """The candidates in the order to try: ``both-shuffled`` first when ``T`` is no circulant up to
    one side's order (its own screen, 64 N^2, then rejects any other matrix at once: the sorted
    rows of ``T T^H`` differ, or no value walks into one cycle), instead of after two full
    read-offs and two shuffle-blind N^3 products that a circulant shuffled on both sides fails."""
    if fit is not None or skip:
        return _CANDIDATES
    return tuple(sorted(_CANDIDATES, key=lambda c: c[0] != "both-shuffled"))


def _direct(t: np.ndarray, fit: CirculantFit | None) -> tuple[list[Step], dict[str, Any]]:
    """``T = W diag(lam) W^-1``: ``W`` read off ``T``, ``lam`` projected, ``B2 = diag(R lam R) B'``.

    A circulant (columns in cyclic order) is first projected on the circulants and denoised
    (:mod:`.circulant_fit`), and ``W`` is read off that clean matrix instead of the noisy one."""
    fitted = _as_circulant(t, fit) if fit is not None and fit.in_order else None
    if fitted is not None:
        return fitted
    twiddle_w, lam, residual, twiddle_inv, conditioning = _basis(t)
    steps = _similarity_steps(twiddle_w, lam, twiddle_inv, _identity_order(t.shape[0]))
    return steps, _info(t, steps, residual, conditioning)


def _similarity_steps(twiddle_w: np.ndarray, lam: np.ndarray, twiddle_inv: np.ndarray, order: np.ndarray) -> list[Step]:
    """Steps of ``T[:, order] = W diag(lam) W^-1``: ``[order R, diag(R lam R) B', R, W]`` (the column
    order folded into the first bit reversal)."""
    rev = bit_reversal(twiddle_w.shape[1] * 2)
    twiddle_2 = _scale_outputs(twiddle_inv, lam[rev])
    return [Step("permutation", order[rev]), Step("butterfly", twiddle_2), Step("permutation", rev),
            Step("butterfly", twiddle_w)]


def _identity_order(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.int64)


def _circulant_fit(t: np.ndarray) -> CirculantFit | None:
    """:func:`fit_circulant_columns` of ``T``, or None when ``T`` is no circulant up to its column order."""
    try:
        return fit_circulant_columns(t, GRACEFUL)
    except RouteUnavailable:
        return None


def _as_circulant(t: np.ndarray, fit: CirculantFit) -> tuple[list[Step], dict[str, Any]] | None:
    """``T = C Q + E`` with ``C`` circulant: the basis read off the denoised least-squares circulant.

    Why: the eigenbasis read-off is exact on a clean circulant of any filter, but noise splits a
    symmetric filter's pairs of equal eigenvalues at random and buries a short filter's zero taps;
    the fit (:func:`fit_circulant_columns`) restores both within the noise. None when the clean
    basis fails at every rotation: the caller's general read-off then runs. The residual reported
    is the fit's spread (the noise outside the circulants), so a noisy input settles at its own
    noise floor.
    """
    best: tuple[list[Step], dict[str, Any]] | None = None
    for order, c in fit.rotations():
        try:
            twiddle_w, lam, residual, twiddle_inv, conditioning = _basis(circulant_matrix(c))
        except RouteUnavailable:
            continue
        if residual > _CLEAN_BASIS:
            continue  # a clean matrix read off to less than rounding: try the next rotation
        steps = _similarity_steps(twiddle_w, lam, twiddle_inv, order.astype(np.int64))
        info = _info(t, steps, max(residual, fit.spread), conditioning)
        if best is None or info["probe_rel_error"] < best[1]["probe_rel_error"]:
            best = (steps, info)
        if info["probe_rel_error"] <= max(2 * fit.spread, _FIT_ROUNDING):
            break  # explains T to its noise (or to rounding): no other rotation can do better
    return best


def _scaled_circulant(t: np.ndarray) -> tuple[list[Step], dict[str, Any]]:
    """``T = D1 C D2`` with ``C`` circulant: the scalings divided out (:mod:`.scaled_circulant`),
    the circulant fitted and denoised as for ``direct``, the scalings folded into the outer
    butterflies (``D1`` into the last one's outputs, ``D2`` into the first one's inputs).

    Why not only ``scaled``: the two-sided read-off is blind to the scalings but not to a singular
    or noisy symmetric filter; once unscaled, the circulant fit restores those exactly."""
    r, s = row_column_scalings(t, GRACEFUL)
    fit = None
    for _ in range(2):  # the ratios' scalings, then one least-squares sweep against their circulant
        if fit is not None:
            r, s = refine_scalings(t, r, s, circulant_matrix(fit.filter))
        unscaled = t / (r[:, None] * s[None, :])
        fit = _circulant_fit(unscaled)
        if fit is None or not fit.in_order:
            raise RouteUnavailable("the matrix with its scalings divided out is no circulant")
    fitted = _as_circulant(unscaled, fit)
    if fitted is None:
        raise RouteUnavailable("no butterfly basis reads off the unscaled circulant")
    steps, info = fitted
    perm = steps[0].data
    steps = [steps[0], Step("butterfly", _scale_inputs(steps[1].data, s[perm])), steps[2],
             Step("butterfly", _scale_outputs(steps[3].data, r))]
    model = r[:, None] * circulant_matrix(fit.filter) * s[None, :]
    residual = float(np.linalg.norm(model - t)) / float(np.linalg.norm(t))
    return steps, _info(t, steps, residual, info["basis_conditioning"])


def _scaled(t: np.ndarray) -> tuple[list[Step], dict[str, Any]]:
    """``T = W1 diag(lam) W2^-1`` (row and column scalings of the above, or any two butterflies
    meeting at a bit reversal): both bases read off ``T`` by :func:`two_sided_basis`."""
    twiddle_1, twiddle_2, lam, residual = two_sided_basis(t, stop_above=_STOP)
    if residual > _STOP:
        raise RouteUnavailable(f"no two-sided butterfly basis (2x2 splits leave {residual:.1e} off-diagonal)")
    twiddle_inv, conditioning = inverse_twiddles(twiddle_2)
    if not conditioning >= SINGULAR_BLOCK:  # NaN included
        raise RouteUnavailable(f"the column basis is singular (2x2 block conditioning {conditioning:.1e})")
    rev = bit_reversal(t.shape[0])
    steps = [Step("permutation", rev), Step("butterfly", _scale_outputs(twiddle_inv, lam[rev])), Step("permutation", rev),
             Step("butterfly", twiddle_1)]
    return steps, _info(t, steps, residual, conditioning)


def _column_shuffled(t: np.ndarray, fit: CirculantFit | None | str = "fit it",
                     gram: np.ndarray | None = None) -> tuple[list[Step], dict[str, Any]]:
    """``T = C Q``: a circulant read off its columns' cyclic shifts (:func:`_as_circulant`), or else
    ``W`` read off ``T T^H + alpha T f(T)^H``, then ``R W^-1 T`` factored as ``B2 P`` (any group
    convolution: a dyadic one's columns are no cyclic shifts)."""
    fit = _circulant_fit(t) if isinstance(fit, str) else fit
    fitted = _as_circulant(t, fit) if fit is not None else None
    if fitted is not None:
        return fitted
    twiddle_w, _, residual, twiddle_inv, conditioning = _basis(_shuffle_blind(t, gram))
    rev = bit_reversal(t.shape[0])
    rest = apply_inverse(twiddle_inv, t.T).T[rev]  # R W^-1 T
    perm = discover_permutation(rest)
    twiddle_2 = factor_butterfly(rest, cols=perm)
    steps = [Step("permutation", perm), Step("butterfly", twiddle_2), Step("permutation", rev), Step("butterfly", twiddle_w)]
    return steps, _info(t, steps, residual, conditioning)


def _row_shuffled(t: np.ndarray, row_fit: CirculantFit | None | str = "fit it") -> tuple[list[Step], dict[str, Any]]:
    """``T = Q C``: the column-shuffled factorization of ``T^T``, transposed back (``row_fit``: the
    circulant fit of ``T^T``'s columns when the caller has it already, None when there is none)."""
    steps, info = _column_shuffled(np.ascontiguousarray(t.T), row_fit)
    steps = transpose_steps(steps)
    return steps, _info(t, steps, info["eigen_residual"], info["basis_conditioning"])


def _both_shuffled(t: np.ndarray) -> tuple[list[Step], dict[str, Any]]:
    """``T = Q1 C Q2``: the rows put in a cyclic order read off ``T T^H`` (:mod:`.cyclic_order`),
    then the column-shuffled factorization of ``T[pi]``, the rows' order restored last."""
    spread = sorted_row_spread(t)
    if not spread <= _BOTH_SPREAD:  # NaN included
        raise RouteUnavailable(f"screened out: the sorted rows of T T^H differ by {spread:.1e} (a shuffled "
                               "circulant's are one vector)")
    gram = t @ _adjoint(t)
    order = cyclic_row_order(gram, spread)
    # T[pi] T[pi]^H is the Gram matrix reordered: the column-shuffled candidate need not multiply again
    steps, info = _column_shuffled(np.ascontiguousarray(t[order]), gram=gram[np.ix_(order, order)])
    steps = steps + [Step("permutation", np.argsort(order).astype(np.int64))]
    return steps, _info(t, steps, info["eigen_residual"], info["basis_conditioning"])


_CANDIDATES: tuple[tuple[str, Callable[..., tuple[list[Step], dict[str, Any]]]], ...] = (
    ("scaled-circulant", _scaled_circulant),  # first: its own screen rejects any other matrix in O(N^2)
    ("direct", _direct),
    ("scaled", _scaled),
    ("column-shuffled", _column_shuffled),
    ("row-shuffled", _row_shuffled),
    ("both-shuffled", _both_shuffled),
)


_SCREEN_PAIRS = 64  # row/column pairs of the sub-matrix on which each candidate is screened
_SCREEN_SEED = 20261202


def _screen(name: str, t: np.ndarray) -> None:
    """Reject a candidate on a small sub-matrix before paying for the whole read-off.

    The first split of every candidate's matrix ``A = G diag(A0, A1) G^-1`` (``G`` one 2x2 block per
    pair ``(b, b + N/2)``) restricted to a subset S of pairs, rows and columns ``{b, b + N/2 : b in
    S}``, is ``G_S diag(A0[S, S], A1[S, S]) G_S^-1``: the same first-level structure, a necessary
    condition checked on 2|S| x 2|S| numbers. A matrix without the structure leaves O(1)
    off-diagonal mass there and is rejected at once (before: one full level of the read-off per
    candidate, seconds at N = 4096, and two N^3 products for the shuffle-blind candidates); a
    member passes with its noise. Small matrices are not screened (the full read-off is cheap).
    """
    n = t.shape[0]
    if n < 8 * _SCREEN_PAIRS:
        return
    pairs = np.sort(np.random.default_rng(_SCREEN_SEED).choice(n // 2, _SCREEN_PAIRS, replace=False))
    idx = np.concatenate([pairs, pairs + n // 2])
    with np.errstate(all="ignore"):  # an unstructured sub-matrix may overflow its frames: rejected below
        off, size = _screen_off(name, t, idx)
    if not off <= _STOP * max(size, np.finfo(np.float64).tiny):  # NaN and inf included
        raise RouteUnavailable(f"screened out: the first split of a {2 * _SCREEN_PAIRS}-row sub-matrix leaves "
                               f"{off / max(size, np.finfo(np.float64).tiny):.1e} off-diagonal")


def _screen_off(name: str, t: np.ndarray, idx: np.ndarray) -> tuple[float, float]:
    """Off-diagonal mass of the first split of candidate ``name``'s matrix on rows/columns ``idx``,
    and that sub-matrix's norm."""
    try:
        if name in ("both-shuffled", "scaled-circulant"):  # screened by the candidate itself
            return 0.0, 1.0
        if name == "scaled":
            sub = np.asarray(t[np.ix_(idx, idx)], dtype=np.complex128)
            return float(_two_sided_level(_pair_blocks(sub[None]), 0.0, np.inf)[3]), float(np.linalg.norm(sub))
        if name == "direct":
            sub = t[np.ix_(idx, idx)]
        else:  # the shuffle-blind matrix's rows and columns idx, from those rows of T (or of T^T)
            rows = t[idx] if name == "column-shuffled" else t[:, idx].T
            mean_square = np.mean(t * t)
            sub = _shuffle_blind_rows(rows, complex(mean_square) if np.iscomplexobj(t) else float(mean_square))
        sub = np.asarray(sub, dtype=np.complex128)
        return float(_eigen_level(_pair_blocks(sub[None]), 0.0, np.inf)[2]), float(np.linalg.norm(sub))
    except np.linalg.LinAlgError:
        return np.inf, 1.0


def _shuffle_blind_rows(rows: np.ndarray, mean_square: complex) -> np.ndarray:
    """:func:`_shuffle_blind`'s matrix on the rows and columns ``rows`` stands for (any mixing
    weight keeps it in the same commutative algebra, so the sub-matrix's own one is used)."""
    g = rows * rows - mean_square
    first = rows @ _adjoint(rows)
    second = rows @ _adjoint(g)
    size = float(np.linalg.norm(second))
    if size <= 1e-12 * float(np.linalg.norm(first)):
        return first
    return first + np.exp(0.7j) * (float(np.linalg.norm(first)) / size) * second


def _basis(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, np.ndarray, float]:
    """Twiddles of ``W`` read off ``a``, its eigenvalues ``diag(W^-1 a W)`` (the least-squares
    projection, taken from the recursion's last level), the residual, ``W^-1``'s twiddles and
    their conditioning."""
    twiddle_w, lam, residual = butterfly_eigenbasis(a, stop_above=_STOP)
    if residual > _STOP:
        raise RouteUnavailable(f"not diagonalized by a butterfly basis (2x2 splits leave {residual:.1e} off-diagonal)")
    twiddle_inv, conditioning = inverse_twiddles(twiddle_w)
    if not conditioning >= SINGULAR_BLOCK:  # NaN included
        raise RouteUnavailable(f"the eigenvector basis is singular (2x2 block conditioning {conditioning:.1e})")
    return twiddle_w, lam, residual, twiddle_inv, conditioning


def _shuffle_blind(t: np.ndarray, first: np.ndarray | None = None) -> np.ndarray:
    """``T T^H + alpha T f(T)^H``: blind to a column permutation, same eigenvectors as the hidden ``C``
    (``first``: ``T T^H`` when the caller already has it)."""
    g = t * t
    g -= g.mean()
    first = t @ _adjoint(t) if first is None else first
    second = t @ _adjoint(g)
    size = float(np.linalg.norm(second))
    if size <= 1e-12 * float(np.linalg.norm(first)):
        return first  # f(T) is constant: nothing to add (T T^H alone must then do)
    coef = np.exp(0.7j) * (float(np.linalg.norm(first)) / size)
    if np.iscomplexobj(second):
        second *= coef
        second += first
        return second
    out = np.empty(first.shape, dtype=np.complex128)  # complex result of real products, no temporaries
    np.multiply(second, coef.real, out=out.real)
    out.real += first
    np.multiply(second, coef.imag, out=out.imag)
    return out


def _adjoint(x: np.ndarray) -> np.ndarray:
    """``x^H``; for a real ``x`` just the transposed view (``conj`` would copy N^2 numbers)."""
    return x.conj().T if np.iscomplexobj(x) else x.T


def _scale_inputs(twiddle: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Twiddles of ``B diag(d)``: the first stage's block columns scaled by ``d`` at their inputs
    (stride 1: pair ``i`` reads positions ``2i`` and ``2i + 1``)."""
    out = np.array(twiddle, dtype=np.complex128)
    out[0, :, :, 0] *= d[0::2, None]
    out[0, :, :, 1] *= d[1::2, None]
    return out


def _scale_outputs(twiddle: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Twiddles of ``diag(d) B``: the last stage's block rows scaled by ``d`` at their outputs."""
    out = np.array(twiddle, dtype=np.complex128)
    levels, half = twiddle.shape[:2]
    pos = pair_positions(2 * half, levels - 1)
    out[levels - 1, :, 0, :] *= d[pos, None]
    out[levels - 1, :, 1, :] *= d[pos + half, None]
    return out


def _info(t: np.ndarray, steps: list[Step], residual: float, conditioning: float) -> dict[str, Any]:
    """Provenance of a candidate's steps; unavailable when a near-singular basis overflowed them."""
    if not all(s.data is None or np.all(np.isfinite(s.data)) for s in steps):
        raise RouteUnavailable("the basis is numerically singular (its inverse overflows)")
    return {"eigen_residual": residual, "basis_conditioning": conditioning, "probe_rel_error": _probe_error(t, steps)}


def _probe_error(t: np.ndarray, steps: list[Step]) -> float:
    """``||M X - T X|| / ||T X||`` on a few fixed random vectors: O(N^2), unlike forming ``M``."""
    chain = Factors(t.shape[0], steps)
    return numerics.probe_error(lambda x: kernel.apply(chain, x), t, _PROBES, 0)


def _finish(steps: list[Step], matrix: np.ndarray) -> list[Step]:
    """Cast to the input's precision and add a final ``real`` step for a real target."""
    return numerics.finish_steps(steps, matrix)
