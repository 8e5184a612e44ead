"""What the routes of one restart share: its context, a route's result, the best of several starts.

After the relaxed phase a restart hands its chain to one route (:mod:`.order_route` for ``BP``
and ``BPP``, :mod:`.bpbp_route` for ``BPBP``, :mod:`.flip_search` without the repair); each
returns a :class:`RouteResult` that the learner polishes and logs. Small dataclasses instead of
positional tuples, so a route says *what* it counts, not where in a tuple it goes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

from ...factors import Step
from .options import GradientOptions

Reporter = Callable[[str, int, float], None]  # (phase, step, loss): the restart's progress callback

CLEARLY_RIGHT = 1e-10  # a short fit this good (relative squared error) is finished by the polish
FIT_OK = 1e-4  # a short fit at or below this (relative squared error, i.e. 1e-2 relative) counts as the right order


@dataclass(frozen=True)
class Restart:
    """One restart after its relaxed phase: the chain, the float64 target, the knobs.

    ``target`` is transposed (row ``j`` is the image of ``e_j``) and float64/complex128 on the
    chosen device. ``failed`` holds the orders (up to gauge) whose twiddle fits failed; it is
    shared by all restarts of one solve, so none of them is tried again.
    """

    model: Any  # the trained ButterflyChain
    target: Any  # torch tensor
    opts: GradientOptions
    seed: int
    report: Reporter
    failed: set[bytes] = field(default_factory=set)

    @property
    def goal(self) -> float:
        return self.opts.goal


@dataclass
class Fit:
    """The best (steps, loss) of a few fits, and how many starts it took."""

    steps: list[Step]
    loss: float
    starts: int


@dataclass
class RouteResult:
    """What a route hands to the polish and the log."""

    steps: list[Step]
    loss: float  # relative squared error of ``steps``
    flips: int = 0  # 0/1 choices the repair (or the flip search) changed in the rounded permutations
    score: float = math.nan  # closed-form tail energy of the repaired order (nan: no closed-form score)
    fit_tries: int = 0  # twiddle sets fitted before the polish
    orders: int = 0  # orders whose twiddles were fitted
    fitted: str | None = None  # the model's name when the steps do not tell it ("mirror"); None: read them


def best_of_starts(count: int, fit: Callable[[int], tuple[list[Step], float]], good: float) -> Fit:
    """``fit(attempt)`` for attempt 0, 1, ... < ``count``, stopping once the best loss is <= ``good``."""
    best: tuple[list[Step], float] | None = None
    for attempt in range(count):
        steps, loss = fit(attempt)
        if best is None or loss < best[1]:
            best = (steps, loss)
        if best[1] <= good:
            return Fit(best[0], best[1], attempt + 1)
    return Fit(best[0], best[1], count)
