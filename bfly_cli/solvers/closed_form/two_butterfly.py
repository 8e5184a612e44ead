"""Two butterflies: ``T = W . R . B2 . P`` for matrices diagonalized by a butterfly basis.

A circulant (convolution) ``C = F^-1 diag(F c) F`` is the typical member, but nothing here knows
about Fourier: the route only assumes ``T = W diag(lam) W^-1 Q`` with ``W`` a butterfly and ``Q`` an
optional column permutation (a shuffled input order).

1. **The basis W.** :func:`~.butterfly_eigen.butterfly_eigenbasis` reads ``W``'s twiddles off a
   matrix ``A = W diag(.) W^-1`` in O(N^2), one 2x2 eigenproblem per row pair and level.
   ``direct``: ``A = T`` (unshuffled; normal or not). ``column-shuffled``: ``T Q^T`` is hidden, but
   ``T f(T)^H = C f(C)^H`` for any entrywise ``f`` because a column permutation cancels inside the
   product; for a group convolution (circulant, dyadic) ``f(C)`` stays in the same commutative
   algebra, so ``A = T T^H + alpha T f(T)^H`` with ``f(x) = x^2 - mean`` shares ``W``. The second
   term splits the pairs ``|lam_k| = |lam_-k|`` that ``T T^H`` alone leaves degenerate for a real
   filter.
2. **The rest.** ``K = W^-1 T = diag(lam) W^-1 Q``. ``W^-1 = R B' R`` (:mod:`.butterfly_inverse`: inverted
   2x2 blocks, bit reversal ``R``), so ``R K = (R lam R) B' (R Q)`` is a row-scaled butterfly with
   permuted columns: :func:`discover_permutation` and :func:`factor_butterfly` factor it exactly
   as ``B2 . P``. Hence ``T = W R B2 P``: steps ``[P, B2, R, W]`` (plus ``real`` for a real target),
   the seed paper's BPBP with no inverse, no dense eigensolver and no Fourier twiddles.

Every candidate is checked on random probe vectors; the route raises :class:`RouteUnavailable`
(with each candidate's reason) when none reproduces ``T`` to :data:`ACCEPT`.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ... import kernel
from ...factors import Factors, Step
from .. import RouteUnavailable, checked_square
from .eigenbasis import butterfly_eigenbasis
from .hierarchical import factor_butterfly
from .butterfly_inverse import apply_inverse, bit_reversal, inverse_twiddles
from .bp_order import discover_permutation

ACCEPT = 1e-8  # probe relative error above which a candidate is not a two-butterfly factorization
SINGULAR_BLOCK = 1e-13  # |det| / |block|^2 below which W is not invertible
_PROBES = 4


def solve_two_butterfly(matrix: np.ndarray) -> tuple[list[Step], dict[str, Any]]:
    """Factor ``matrix`` as ``W R B2 P`` (two butterflies); raise :class:`RouteUnavailable` if it is not one."""
    t = checked_square(matrix)
    reasons = []
    for name, basis_matrix in _CANDIDATES:
        try:
            steps, info = _factor_through_basis(t, basis_matrix(t))
        except RouteUnavailable as exc:
            reasons.append(f"{name}: {exc}")
            continue
        if info["probe_rel_error"] <= ACCEPT:
            return _finish(steps, matrix), {"two_butterfly_basis": name, **info, "rejected": reasons}
        reasons.append(f"{name}: not diagonalized by a butterfly basis (probe rel error {info['probe_rel_error']:.1e})")
    raise RouteUnavailable("two-butterfly route does not apply: " + "; ".join(reasons))


def _direct(t: np.ndarray) -> np.ndarray:
    """``T`` itself: its eigenvectors are ``W`` when ``T = W diag W^-1`` (no column shuffle)."""
    return t


def _column_shuffled(t: np.ndarray) -> np.ndarray:
    """``T T^H + alpha T f(T)^H``: blind to a column permutation, same eigenvectors as the hidden ``C``."""
    g = t * t
    g -= g.mean()
    first = t @ _adjoint(t)
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


_CANDIDATES: tuple[tuple[str, Callable[[np.ndarray], np.ndarray]], ...] = (
    ("direct", _direct),
    ("column-shuffled", _column_shuffled),
)


def _factor_through_basis(t: np.ndarray, a: np.ndarray) -> tuple[list[Step], dict[str, Any]]:
    """Steps ``[P, B2, R, W]`` with ``W`` read off ``a``, and their provenance (errors, residuals)."""
    twiddle_w, _, residual = butterfly_eigenbasis(a, stop_above=ACCEPT)
    if residual > ACCEPT:
        raise RouteUnavailable(f"not diagonalized by a butterfly basis (2x2 splits leave {residual:.1e} off-diagonal)")
    twiddle_inv, conditioning = inverse_twiddles(twiddle_w)
    if conditioning < SINGULAR_BLOCK:
        raise RouteUnavailable(f"the eigenvector basis is singular (2x2 block conditioning {conditioning:.1e})")
    rev = bit_reversal(t.shape[0])
    rest = apply_inverse(twiddle_inv, t.T).T[rev]  # R W^-1 T
    perm = discover_permutation(rest)
    twiddle_2 = factor_butterfly(rest[:, perm])
    steps = [Step("permutation", perm), Step("butterfly", twiddle_2), Step("permutation", rev), Step("butterfly", twiddle_w)]
    info = {"eigen_residual": residual, "basis_conditioning": conditioning, "probe_rel_error": _probe_error(t, steps)}
    return steps, info


def _probe_error(t: np.ndarray, steps: list[Step]) -> float:
    """``||M X - T X|| / ||T X||`` on a few fixed random vectors: O(N^2), unlike forming ``M``."""
    x = np.random.default_rng(0).standard_normal((_PROBES, t.shape[0]))
    want = x @ t.T
    got = kernel.apply(Factors(t.shape[0], steps), x)
    return float(np.linalg.norm(got - want) / max(float(np.linalg.norm(want)), np.finfo(np.float64).tiny))


def _finish(steps: list[Step], matrix: np.ndarray) -> list[Step]:
    """Cast to the input's precision and add a final ``real`` step for a real target."""
    single = np.asarray(matrix).dtype in (np.float32, np.complex64)
    cast = [Step(s.kind, s.data.astype(np.complex64)) if single and s.kind == "butterfly" else s for s in steps]
    return cast + [Step("real")] if not np.iscomplexobj(matrix) else cast
