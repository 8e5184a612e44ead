"""Round the relaxed permutations, then hill-climb single-choice flips scored by a short fit.

The route of ``BPBP`` when the outside-in fit (:mod:`.bpbp_route`) does not apply, and of every
model with ``search=False`` (rounding only): two butterflies have no closed-form order score, so
each candidate order is scored by a short float64 L-BFGS fit of its twiddles.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ...factors import Step
from .refine import refine_steps
from .restart import CLEARLY_RIGHT, Restart, RouteResult


def round_and_search(run: Restart) -> RouteResult:
    """The rounded choices, improved one flip at a time while a flip halves the loss."""
    model, opts, goal = run.model, run.opts, run.goal
    choices = model.hard_choices()
    steps, loss = refine_steps(run.target, model.to_steps(choices), opts.search_iters, goal / 100)
    run.report("search", 0, loss)
    flips = 0
    if not opts.search:
        return RouteResult(steps, loss)
    for _ in range(opts.search_rounds):
        if loss <= max(goal, CLEARLY_RIGHT):
            break
        cand = _best_flip(run, steps, choices)
        if cand is None or cand[1] >= 0.5 * loss:
            break
        steps, loss, choices = cand
        flips += 1
        run.report("search", flips, loss)
    return RouteResult(steps, loss, flips=flips)


def _best_flip(run: Restart, steps: list[Step], choices: list[np.ndarray]):
    """``(steps, loss, choices)`` of the single-choice flip whose short fit is best (None: no flip)."""
    best = None
    for cand in single_flips(choices):
        trial = with_permutations(steps, run.model.to_steps(cand))
        trial, loss = refine_steps(run.target, trial, run.opts.search_iters, run.goal / 100)
        if best is None or loss < best[1]:
            best = (trial, loss, cand)
        if loss <= run.goal:
            break
    return best


def single_flips(choices: Sequence[np.ndarray]) -> list[list[np.ndarray]]:
    """Every choice set that differs from ``choices`` in exactly one 0/1 choice."""
    out = []
    for which, arr in enumerate(choices):
        for idx in np.ndindex(arr.shape):
            new = [c.copy() for c in choices]
            new[which][idx] = not new[which][idx]
            out.append(new)
    return out


def with_permutations(steps: list[Step], perm_source: list[Step]) -> list[Step]:
    """``steps`` with its permutation data replaced by those of ``perm_source`` (same kinds)."""
    return [Step("permutation", src.data) if own.kind == "permutation" else own
            for own, src in zip(steps, perm_source)]
