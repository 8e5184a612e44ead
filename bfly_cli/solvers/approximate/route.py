"""Best approximation when nothing is exact: closed form, then a float64 polish, ``budget`` blocks.

Design (budget ``K`` = number of butterfly blocks, 1..8):

1. **Closed form.** :func:`discover_permutation` fixes ``P1``; two closed forms of ``B1`` are
   computed and the one with the smaller error starts the polish: the plain hierarchical fit
   (:func:`factor_butterfly`, every split the best rank-one fit of its blocks, factored on in its
   own norm) and the orthonormalization sweep (:func:`factor_butterfly_orthonormal`, the same tree
   with each half factored in the norm of the target and the other half re-fitted to it, so the
   squared errors of the L - 1 splits add: within ``sqrt(L - 1)`` of the best butterfly
   approximation). The sweep measured 0.5-2.5 % better on legendre and randn (N = 8..1024); the
   plain fit is kept because nothing guarantees that order on every matrix. Both give the exact
   answer for an exact butterfly. The metadata records which one started (``init``) and both
   errors (``init_rel_errors``).
2. **Polish.** :func:`.twiddle_lbfgs.polish_twiddles` runs L-BFGS on the exact loss ``||M - T||_F^2`` over all
   twiddles, permutations fixed. For a real target the model is the paper's: complex twiddles and
   a final ``real`` step, ``M = Re(B P)`` (2N log2 N complex numbers: one untied complex B.P).
   The real closed form is a stationary point in the imaginary directions (a purely imaginary
   perturbation does not move ``Re(M)`` to first order), so the start gets a tiny imaginary
   perturbation; the polish keeps the best chain it saw, and the unperturbed closed form is
   compared at the end, so the result is never worse than the closed form.
3. **More blocks** (product design): ``M = B_K ... B_2 B_1 P_1``. Each new butterfly starts as the
   exact identity, so the chain starts *exactly* at the ``K-1`` result and the joint polish (which
   keeps the best chain it evaluated) can only improve on it: the error is monotone in ``K``. No
   kick is needed there: the earlier blocks are already complex, so the imaginary directions of the
   new block have a nonzero gradient. Parameters grow linearly (K x one B.P).

The polish length is set by the cost of one loss evaluation (O(N^2) for one block, O(K N^2 log N)
for K), so that N = 1024 stays within tens of seconds on two cores; all randomness is seeded.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import BflyError
from ...factors import Step
from .. import checked_square
from ..closed_form.bp_order import discover_permutation
from ..closed_form.hierarchical import factor_butterfly
from ..numerics import finish_steps
from .orthonormal import factor_butterfly_orthonormal
from .twiddle_lbfgs import polish_twiddles

MAX_BUDGET = 8
_WORK = 1e8  # ~ N^2 x passes x iterations spent in the polish per block
_SINGLE_PASSES = 1.0  # single-block evaluation cost, in passes over N^2 (calibrated: see iterations)
_KICK = 1e-3  # relative size of the imaginary perturbation that breaks the real stationary point
_EXACT = 1e-13  # below this the polish already found an exact fit
_NEAR = 1e-4  # above this no exact structure is near: no Gauss-Newton finish
_NEAR_MAX_N = 64  # seconds at N <= 64; measured 40 s at N = 256 (a noisy butterfly), too slow for a default
_NEAR_ITERS = 300


class BudgetError(BflyError, ValueError):
    """``budget`` outside 1..8: bad usage (exit 2), whichever of the two a caller catches."""


def solve_approximate(matrix: np.ndarray, budget: int = 1) -> tuple[list[Step], dict[str, Any]]:
    """Best approximation with ``budget`` butterfly blocks; see the module docstring for the design."""
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or not 1 <= budget <= MAX_BUDGET:
        raise BudgetError(f"budget must be an integer from 1 to {MAX_BUDGET} (butterfly blocks), got {budget!r}")
    t = checked_square(matrix)
    real = not np.iscomplexobj(t)
    n = t.shape[0]
    perm = discover_permutation(t)
    init, closed, closed_loss, init_errors = _closed_form(t, perm, real)
    steps, history = closed, []
    for blocks in range(1, budget + 1):
        start = _kick(steps, real) if blocks == 1 else steps + [Step("butterfly", _identity(n))]
        result = polish_twiddles(t, start, iterations(n, blocks), real)
        history.append({"blocks": blocks, "start_rel_error": _rel(result.start_loss, t), "rel_error": _rel(result.final_loss, t),
                        "evaluations": result.evaluations, "seconds": round(result.seconds, 3)})
        steps = result.steps if blocks > 1 or result.final_loss < closed_loss else closed
    steps, near = _finish_near_exact(t, steps, real, history[-1]["rel_error"])
    out = finish_steps(steps, matrix)
    return out, {"budget": budget, "closed_form_rel_error": _rel(closed_loss, t), "init": init,
                 "init_rel_errors": init_errors, "polish": history, **near}


def _finish_near_exact(t: np.ndarray, steps: list[Step], real: bool, rel: float) -> tuple[list[Step], dict[str, Any]]:
    """Levenberg-Marquardt to machine precision when the L-BFGS polish ended near an exact fit.

    L-BFGS crawls on the last digits of a zero-residual fit (the ``Re`` readout leaves the
    imaginary part free), so a matrix that *is* a butterfly under a real part (the DCT at N = 8:
    Re(D F P)) ends at 1e-7 instead of 1e-15. An error below ``_NEAR`` is the sign of such a
    structure; the Levenberg-Marquardt finish of :func:`..gradient.refine.polish` then costs a few seconds at
    small N and is never worse (it keeps the best iterate). Farther from exact it is skipped:
    it would cost much and gain little.
    """
    if not _EXACT < rel <= _NEAR or t.shape[0] > _NEAR_MAX_N:
        return steps, {}
    from ..gradient.refine import polish as newton_polish

    start = steps + [Step("real")] if real else steps
    polished = [s for s in newton_polish(t, start, max_iter=_NEAR_ITERS, target=_EXACT / 10) if s.kind != "real"]
    after = _rel(_loss(t, polished, real), t)
    return (polished if after < rel else steps), {"near_exact_finish": {"rel_error_before": rel, "rel_error_after": min(after, rel)}}


def _closed_form(t: np.ndarray, perm: np.ndarray, real: bool) -> tuple[str, list[Step], float, dict[str, float]]:
    """The better of the two closed forms (module docstring, step 1): name, steps, loss, both errors.

    Ties go to the sweep (listed first), the initialization with the error guarantee.
    """
    candidates = {"orthonormal": factor_butterfly_orthonormal, "plain": factor_butterfly}
    fits = {}
    for name, factor in candidates.items():
        steps = [Step("permutation", perm), Step("butterfly", factor(t[:, perm]).astype(np.complex128))]
        fits[name] = (steps, _loss(t, steps, real))
    best = min(fits, key=lambda name: fits[name][1])
    return best, fits[best][0], fits[best][1], {name: _rel(loss, t) for name, (_, loss) in fits.items()}


def iterations(n: int, blocks: int) -> int:
    """L-BFGS iterations for a chain of ``blocks`` butterflies of size ``n`` (10..200).

    One evaluation costs about ``blocks * log2 N`` passes over N^2 numbers, except a single block,
    which the polish forms in O(N^2) (measured 4x cheaper than the stage-by-stage form at
    N = 1024). ``_SINGLE_PASSES`` spends that saving on iterations: one block at N = 1024 gets 95
    iterations in about the 10 s that 10 stage-by-stage iterations took (randn 1024: rmse
    3.04e-2 instead of 3.08e-2).
    """
    passes = _SINGLE_PASSES if blocks == 1 else blocks * max(n.bit_length() - 1, 1)
    return int(np.clip(_WORK / (n * n * passes), 10, 200))


def _kick(steps: list[Step], real: bool) -> list[Step]:
    """For a real target, add a small seeded imaginary part to the twiddles (see module docstring)."""
    if not real:
        return steps
    rng = np.random.default_rng(0)
    out = []
    for s in steps:
        if s.kind == "butterfly":
            size = np.sqrt(np.mean(np.abs(s.data) ** 2))
            s = Step("butterfly", s.data + 1j * _KICK * size * rng.standard_normal(s.data.shape))
        out.append(s)
    return out


def _identity(n: int) -> np.ndarray:
    """Twiddles of the identity butterfly (complex, so the polish can move it anywhere)."""
    levels = n.bit_length() - 1
    tw = np.zeros((levels, n // 2, 2, 2), dtype=np.complex128)
    tw[..., 0, 0] = tw[..., 1, 1] = 1.0
    return tw


def _loss(t: np.ndarray, steps: list[Step], real: bool) -> float:
    from ...factors import Factors

    m = Factors(t.shape[0], steps).to_dense()
    return float(np.linalg.norm((m.real if real else m) - t) ** 2)


def _rel(loss: float, t: np.ndarray) -> float:
    return float(np.sqrt(loss) / max(float(np.linalg.norm(t)), np.finfo(np.float64).tiny))
