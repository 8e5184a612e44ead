"""``BP`` and ``BPP``: repair the rounded order by its exact score, then fit that order's twiddles.

The repair (:mod:`.choice_repair`) scores a hard order by the block-rank tail energy of its
hierarchical splits. A zero score is necessary, not sufficient, for ``Re`` of a complex
butterfly: at N = 8 about half of DCT's exact rank-2 orders are not reachable and their fits
stall at a relative error ~0.2, while right orders fit in a few tries. So an order whose short
fits stay above :data:`~.restart.FIT_OK` is excluded (for every later restart too) and the next
exact order is tried, up to ``opts.orders`` per restart. A rank-2 order may instead
(:func:`real_route`) go to the real rank-2 model (:mod:`.rank2_fit`), which fits *every* exact
rank-2 order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...factors import Step
from .choice_repair import EXACT, order_key, search_pair, search_single
from .options import GradientOptions
from .rank2_fit import fit_rank2
from .refine import refine_steps
from .restart import CLEARLY_RIGHT, FIT_OK, Fit, Restart, RouteResult, best_of_starts


@dataclass(frozen=True)
class Repair:
    """A repaired order: the choices per permutation, their score, what changed, the rank scored."""

    choices: list[np.ndarray]
    score: float  # relative tail energy (<= EXACT: an exact order)
    flips: int  # 0/1 choices changed from the rounded relaxation
    rank: int  # block rank of the score: 1 (a butterfly) or 2 (Re of a complex one)


def fit_orders(run: Restart) -> RouteResult:
    """Repair the rounding, fit twiddles; if the fit fails, exclude that order and repair again.

    Returns the best fit with the last repair's flips and score and the totals of fits and
    orders tried.
    """
    best: Fit | None = None
    tries = orders = 0
    repair = None
    for _ in range(run.opts.orders):
        repair = repair_order(run, frozenset(run.failed))
        run.report("search", repair.flips, repair.score)
        fit = _fit_order(run, repair)
        tries, orders = tries + fit.starts, orders + 1
        if best is None or fit.loss < best.loss:
            best = fit
        if fit.loss <= FIT_OK or repair.score > EXACT:
            break
        run.failed.add(order_key(merged_order(run.model, repair.choices)))
    flips, score = (repair.flips, repair.score) if repair is not None else (0, math.nan)
    return RouteResult(best.steps, best.loss, flips=flips, score=score, fit_tries=tries, orders=orders)


def _fit_order(run: Restart, repair: Repair) -> Fit:
    """The twiddles of one repaired order, by the model(s) :func:`real_route` picks."""
    route = real_route(run.opts, run.target.shape[0], repair.rank, repair.score)
    fit = Fit([], math.inf, 0)
    if route in ("complex", "both"):
        fit = fit_twiddles(run, repair.choices, real=repair.rank == 1)
    if route in ("rank2", "both") and fit.loss > FIT_OK:
        rank2 = fit_rank2(run, merged_order(run.model, repair.choices))
        fit = Fit(rank2.steps, rank2.loss, fit.starts + rank2.starts)
    return fit


def real_route(opts: GradientOptions, n: int, rank: int, score: float) -> str:
    """Which twiddle model fits a repaired order: "complex", "rank2" or "both" (complex first).

    Rank-1 orders and inexact ones always take the chain's own (complex) model. For an exact
    rank-2 order of a real target, ``Re`` of a complex butterfly from random twiddles stalls in
    local minima more and more often as N grows (measured with a known-right order, 0 of 4
    random starts reached 1e-3 at N = 32, L-BFGS or dense Levenberg-Marquardt alike), while the
    real rank-2 model (each twiddle a real 2x2 of 2x2 blocks, a superset of ``Re`` of complex
    twiddles) reached 1e-13 from 5 of 5 random starts at N = 32 and 64.
    """
    if rank != 2 or score > EXACT or opts.real_model == "complex":
        return "complex"
    if opts.real_model == "rank2" or n >= opts.rank2_from:
        return "rank2"
    return "both"


def merged_order(model, choices: list[np.ndarray]) -> np.ndarray:
    """The one column order (``x <- x[perm]``) of the chain's hard permutations, in application order."""
    perms = [p.hard_permutation(c) for p, c in zip(model.permutations(), choices)]
    merged = perms[0]
    for perm in perms[1:]:
        merged = merged[perm]
    return merged


def _score_ranks(model, target) -> tuple[int, ...]:
    """Block ranks to try, lowest first: 1 (a butterfly), then 2 for ``Re`` of a complex one.

    A real target with an exact rank-1 order is a real butterfly (Hadamard): its twiddles are
    then started real, which the ``Re`` fit finds far more easily than a generic complex start.
    """
    return (1, 2) if model.real_output and not target.is_complex() else (1,)


def repair_order(run: Restart, exclude: frozenset[bytes] = frozenset()) -> Repair:
    """Repair the rounded permutations with the closed-form score (:mod:`.choice_repair`).

    Orders in ``exclude`` (keys of :func:`~.choice_repair.order_key`) count as not exact.
    """
    matrix = run.target.detach().cpu().numpy().T
    rounded = run.model.hard_choices()
    found, rank = None, 1
    for rank in _score_ranks(run.model, run.target):
        if len(rounded) == 1:
            found = search_single(matrix, rounded[0], rank, run.opts.beam, exclude)
        else:
            found = search_pair(matrix, rounded[0], rounded[1], rank, run.opts.beam, exclude=exclude)
        if found.score <= EXACT:
            break
    flips = int(sum(np.sum(a != b) for a, b in zip(found.choices, rounded)))
    return Repair(found.choices, found.score, flips, rank)


def fit_twiddles(run: Restart, choices: list[np.ndarray], real: bool) -> Fit:
    """Fit the twiddles for fixed permutations: the relaxed ones, then fresh random sets.

    With a ``Re`` readout a random start often stalls in a local minimum even for the right
    order, so a few starts get a short float64 L-BFGS each and the best one goes on to the
    polish; the loop stops as soon as one is clearly right. The random sets come from
    ``(seed, try)`` (deterministic) and are real when ``real``.
    """
    template = run.model.to_steps(choices)

    def fit(attempt: int) -> tuple[list[Step], float]:
        start = template if attempt == 0 else random_twiddles(template, run.seed, attempt, real)
        steps, loss = refine_steps(run.target, start, run.opts.fit_iters, run.goal / 100)
        run.report("fit", attempt, loss)
        return steps, loss

    return best_of_starts(run.opts.fit_tries + 1, fit, CLEARLY_RIGHT)


def random_twiddles(steps: list[Step], seed: int, attempt: int, real: bool = False) -> list[Step]:
    """``steps`` with every butterfly redrawn at random (``E|t|^2 = 1/2``, as the modules' init).

    ``real``: complex butterflies get a zero imaginary part (still complex, so it can move).
    """
    rng = np.random.default_rng([seed, attempt])
    out = []
    for step in steps:
        if step.kind == "butterfly":
            shape = step.data.shape
            if np.iscomplexobj(step.data) and real:
                data = rng.standard_normal(shape) * math.sqrt(0.5) + 0j
            elif np.iscomplexobj(step.data):
                data = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) * 0.5
            else:
                data = rng.standard_normal(shape) * math.sqrt(0.5)
            out.append(Step("butterfly", data))
        else:
            out.append(step)
    return out
