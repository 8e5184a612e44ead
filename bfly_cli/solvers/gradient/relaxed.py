"""The paper's relaxed phase: Adam on a butterfly chain with soft permutations.

The relaxed loss only creeps down (like 1/t) once the twiddles fit, because an exact fit needs
the permutation logits at infinity. Rounding is all the learner needs from this phase, so it
stops when the rounded choices have been stable for ``_PATIENCE`` steps at a loss below
``_SETTLED``, at ``adam_goal``, on a plateau, or after ``opts.steps``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .options import GradientOptions
from .refine import relative_sq_error, squared_norm
from .restart import Reporter

_CHECK_EVERY = 25  # steps between looks at the loss and the rounded choices
_PATIENCE = 300  # steps the rounded choices must stay the same ...
_SETTLED = 1e-2  # ... at a relaxed loss below this
_PLATEAU = 500  # steps without a 1 % improvement


@dataclass(frozen=True)
class Relaxed:
    """How the relaxed phase ended: its last loss and the Adam steps taken."""

    loss: float
    steps: int


def adam(model, target, lr: float, opts: GradientOptions, report: Reporter) -> Relaxed:
    """Train ``model`` (in place) on ``target`` (transposed, single precision) with Adam."""
    import torch

    opt = torch.optim.Adam(model.parameters(), lr=lr)
    norm2 = squared_norm(target)
    best, since, value, step = math.inf, 0, math.inf, 0
    choices, stable = None, 0
    for step in range(1, opts.steps + 1):
        opt.zero_grad(set_to_none=True)
        loss = relative_sq_error(model.matrix_t(), target, norm2)
        loss.backward()
        opt.step()
        if step % _CHECK_EVERY and step != opts.steps:
            continue
        value = float(loss.detach())
        report("adam", step, value)
        now = model.hard_choices()
        same = choices is not None and all(np.array_equal(a, b) for a, b in zip(now, choices))
        choices, stable = now, (stable + _CHECK_EVERY if same else 0)
        best, since = (value, 0) if value < 0.99 * best else (best, since + _CHECK_EVERY)
        if (not math.isfinite(value) or value < opts.adam_goal or since >= _PLATEAU
                or (stable >= _PATIENCE and value < _SETTLED)):
            break
    return Relaxed(value, step)
