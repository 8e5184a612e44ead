"""bfly_cli/solvers/gradient/refine.py: the float64 refinement engine never returns worse than its input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bfly_cli import transforms
from bfly_cli.factors import Factors, Step
from bfly_cli.learning import learn
from bfly_cli.metrics import error_report
from bfly_cli.solvers.closed_form.hierarchical import factor_butterfly
from bfly_cli.solvers.gradient.refine import polish, refine_steps


def _rel(steps: list[Step], matrix: np.ndarray) -> float:
    return error_report(Factors(matrix.shape[0], steps).to_dense(), matrix)["rel_error"]


@pytest.mark.parametrize("name", ["legendre", "randn"])
def test_polish_never_worse_than_closed_form(name):
    matrix = transforms.build(name, 8)
    perm = np.arange(8)
    start = [Step("permutation", perm), Step("butterfly", factor_butterfly(matrix[:, perm]))]
    before = _rel(start, matrix)
    after = _rel(polish(matrix, start, max_iter=100), matrix)
    assert after <= before * (1 + 1e-12)


def test_polish_returns_input_error_when_nothing_helps():
    matrix = transforms.build("dft", 8)
    exact = learn(matrix, solver="hierarchical").steps
    assert _rel(polish(matrix, exact, max_iter=20), matrix) <= max(_rel(exact, matrix), 1e-15) * (1 + 1e-9)


def test_polish_improves_a_perturbed_exact_factorization():
    matrix = transforms.build("dft", 8)
    exact = learn(matrix, solver="hierarchical").steps
    noisy = [Step(s.kind, s.data + 1e-3 * np.random.default_rng(0).standard_normal(s.data.shape))
             if s.kind == "butterfly" else s for s in exact]
    assert _rel(polish(matrix, noisy, max_iter=200, target=1e-12), matrix) < 1e-10 < _rel(noisy, matrix)


def test_refine_steps_reports_the_loss_of_the_steps_it_returns():
    """The returned loss is the relative squared error of the returned steps (checked densely)."""
    matrix = transforms.build("legendre", 8)
    start = [Step("permutation", np.arange(8)), Step("butterfly", factor_butterfly(matrix).astype(complex)),
             Step("real")]
    target = torch.as_tensor(np.ascontiguousarray(matrix.T))
    steps, loss = refine_steps(target, start, 30, 0.0)
    assert loss == pytest.approx(_rel(steps, matrix) ** 2, rel=1e-9)
    assert loss <= _rel(start, matrix) ** 2
