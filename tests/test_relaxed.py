"""bfly_cli/solvers/gradient/relaxed.py: the paper's Adam phase and when it stops."""

from __future__ import annotations

import torch

from bfly_cli import transforms
from bfly_cli.solvers.gradient.options import GradientOptions
from bfly_cli.solvers.gradient.relaxed import adam
from bfly_cli.solvers.gradient.refine import relative_sq_error, squared_norm
from bfly_cli.torch_butterfly import ButterflyChain


def _chain_and_target(n: int = 8):
    target = torch.as_tensor(transforms.build("dft", n).T).to(torch.complex64)
    chain = ButterflyChain(n, "BP", complex=True, dtype=torch.float32, generator=torch.Generator().manual_seed(0))
    return chain, target


def test_adam_lowers_the_relaxed_loss_and_reports_it():
    chain, target = _chain_and_target()
    with torch.no_grad():
        before = float(relative_sq_error(chain.matrix_t(), target, squared_norm(target)))
    seen = []
    relaxed = adam(chain, target, 0.05, GradientOptions(steps=100), lambda *event: seen.append(event))
    assert relaxed.steps <= 100 and relaxed.loss < before
    assert seen and all(phase == "adam" for phase, _, _ in seen) and seen[-1][1] == relaxed.steps


def test_adam_stops_at_its_goal():
    chain, target = _chain_and_target()
    relaxed = adam(chain, target, 0.05, GradientOptions(steps=200, adam_goal=10.0), lambda *event: None)
    assert relaxed.steps == 25  # the first check already meets a goal above any relative loss


def test_zero_steps_leave_the_chain_untouched():
    chain, target = _chain_and_target()
    before = [p.detach().clone() for p in chain.parameters()]
    relaxed = adam(chain, target, 0.05, GradientOptions(steps=0), lambda *event: None)
    assert relaxed.steps == 0
    assert all(torch.equal(a, b) for a, b in zip(before, chain.parameters()))
