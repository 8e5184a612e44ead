"""``BPBP``: the outside-in fit (:mod:`.bpbp_split`) first, else the single-flip search.

The outside-in fit assumes the middle permutation is the bit reversal R and tries two first
orders: the relaxation's rounded one (read through R) and the matrix's own (first permutation R).
An outside-in result is only taken when its float64 error reaches the goal; otherwise the
restart falls back to :func:`.flip_search.round_and_search`.
"""

from __future__ import annotations

import numpy as np

from ...factors import Step
from ...layout import bit_reversal
from .bpbp_split import fit_mirror
from .flip_search import round_and_search
from .refine import refine_steps
from .restart import Restart, RouteResult


def fit_bpbp(run: Restart) -> RouteResult:
    """The outside-in fit when one of its orders is exact (``fitted == "mirror"``), else the search.

    ``orders`` counts the outside-in orders tried, also when the search made the result.
    """
    target = run.target
    n = target.shape[0]
    rev = bit_reversal(n)
    rounded = run.model.to_steps(run.model.hard_choices())[0].data
    tried = 0
    for order in _unique_orders([np.asarray(rounded)[rev], np.arange(n)]):
        tried += 1
        fitted = fit_mirror(target.T, order, run.seed)
        if fitted is None:
            continue
        steps = fitted[0] + ([] if target.is_complex() else [Step("real", None)])
        steps, loss = refine_steps(target, steps, 0, run.goal / 100)  # measures it, float64
        run.report("search", 0, loss)
        if loss <= run.goal:
            return RouteResult(steps, loss, orders=tried, fitted="mirror")
    found = round_and_search(run)
    found.orders = tried
    return found


def _unique_orders(orders: list[np.ndarray]) -> list[np.ndarray]:
    """``orders`` without repeats, first occurrence kept."""
    out: list[np.ndarray] = []
    for order in orders:
        if not any(np.array_equal(order, o) for o in out):
            out.append(order)
    return out
