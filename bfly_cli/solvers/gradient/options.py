"""Every knob of the gradient learner, and their validation with one-line messages.

Kept apart from :mod:`.learner` because every route of a restart (:mod:`.order_route`,
:mod:`.rank2_fit`, :mod:`.bpbp_route`, :mod:`.flip_search`) reads them, and the learner imports
those routes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ...devices import check_device
from ...errors import BflyError

ProgressFn = Callable[[dict[str, Any]], None]

DEFAULT_LR_RANGE = (3e-3, 3e-1)
FIELDS = ("auto", "complex", "real")
REAL_MODELS = ("auto", "complex", "rank2")


@dataclass(frozen=True)
class GradientOptions:
    """Every knob of the learner; ``solve_gradient(matrix, **options)`` builds one."""

    model: str = "BP"  # BP, BPP or BPBP (product notation)
    restarts: int = 8  # at most this many trials; stop at the first success
    steps: int = 300  # Adam steps per restart (the relaxed phase; early stops, see relaxed.adam)
    lr: float | None = None  # fixed learning rate; None draws one per restart from lr_range
    lr_range: tuple[float, float] = DEFAULT_LR_RANGE
    device: str = "cpu"
    seed: int = 0
    target: float = 1e-10  # success: relative Frobenius error at or below this
    field: str = "auto"  # auto: complex twiddles (+ Re for real targets); real: real twiddles
    tied: bool = False  # paper's tied twiddles during the relaxed phase
    share_logits: bool = False  # one set of 3 permutation logits for all levels
    search: bool = True  # repair the rounded permutations (closed-form score; L-BFGS score for BPBP)
    search_rounds: int = 3  # BPBP: single-flip rounds
    search_iters: int = 40  # BPBP: L-BFGS iterations to score one candidate permutation
    beam: int = 4  # closed-form search: chunk partitions kept per level
    fit_tries: int = 2  # fresh random twiddle sets tried (beside the relaxed ones) per fixed order
    orders: int = 3  # exact-scoring orders tried per restart (one whose fit fails is excluded after)
    fit_iters: int = 150  # float64 L-BFGS iterations of each of those trial fits
    real_model: str = "auto"  # rank-2 orders of real targets: complex (Re), rank2, or auto (order_route.real_route)
    rank2_from: int = 32  # auto: from this N on, rank-2 orders go straight to the real rank-2 model
    rank2_tries: int = 2  # random starts of the real rank-2 model per order
    polish_iters: int = 2000  # L-BFGS iterations of the final float64 polish
    gn_iters: int = 100  # Levenberg-Marquardt steps of the final polish (stops early on a stall)
    adam_goal: float = 1e-7  # stop Adam once the relaxed relative squared error is below this
    time_limit: float | None = None  # seconds: start no new restart after this much wall time
    on_progress: ProgressFn | None = None

    @property
    def goal(self) -> float:
        """The target as a relative *squared* error, the loss every fit minimizes."""
        return self.target**2


def check_options(opts: GradientOptions, matrix: np.ndarray) -> GradientOptions:
    """Validate user-facing options with one-line messages naming the bad value."""
    from ...torch_butterfly import MODELS

    if opts.model not in MODELS:
        raise BflyError(f"unknown model {opts.model!r}; choose one of: {', '.join(MODELS)}")
    if opts.field not in FIELDS:
        raise BflyError(f"unknown field {opts.field!r}; choose one of: {', '.join(FIELDS)}")
    if opts.real_model not in REAL_MODELS:
        raise BflyError(f"unknown real_model {opts.real_model!r}; choose one of: {', '.join(REAL_MODELS)}")
    if opts.field == "real" and np.iscomplexobj(matrix):
        raise BflyError("field 'real' cannot fit a complex matrix; use field 'auto'")
    if opts.restarts < 1 or opts.steps < 0:
        raise BflyError(f"--restarts must be >= 1 and --steps >= 0 (got {opts.restarts}, {opts.steps})")
    if opts.lr is not None and not opts.lr > 0:
        raise BflyError(f"--lr must be positive (got {opts.lr})")
    check_device(opts.device)
    return opts
