"""The best-approximation route: closed form + monotone polish, product budget."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import transforms
from bfly_cli.errors import BflyError
from bfly_cli.factors import Factors, Step
from bfly_cli.metrics import error_report
from bfly_cli.solvers.approximate import BudgetError, iterations, solve_approximate
from bfly_cli.solvers.hierarchical import factor_butterfly
from bfly_cli.solvers.permutation import discover_permutation
from bfly_cli.solvers.polish import polish

from conftest import random_butterfly

PAPER = Path(__file__).resolve().parents[2] / "shared" / "reference" / "paper-rmse.json"


def _report(steps, target):
    return error_report(Factors(target.shape[0], steps).to_dense(), target)


@pytest.mark.parametrize("name", ["legendre", "randn"])
@pytest.mark.parametrize("n", [8, 16, 32])
def test_budget_one_beats_closed_form_within_one_complex_bp(name, n):
    t = transforms.build(name, n)
    steps, extra = solve_approximate(t)
    factors = Factors(n, steps)
    rel = _report(steps, t)["rel_error"]
    assert factors.structure == "RBP"
    assert factors.n_params() == 2 * n * (n.bit_length() - 1)  # complex numbers of one untied B.P
    assert rel < extra["closed_form_rel_error"]
    if PAPER.exists():
        ref = json.loads(PAPER.read_text())
        assert _report(steps, t)["rmse"] <= ref["rmse"][name][ref["sizes"].index(n)]


def test_budget_two_is_never_worse_than_budget_one():
    t = transforms.build("randn", 16)
    one, _ = solve_approximate(t, budget=1)
    two, extra = solve_approximate(t, budget=2)
    assert Factors(16, two).structure == "RBBP"
    assert Factors(16, two).n_params() == 2 * Factors(16, one).n_params()
    assert _report(two, t)["rel_error"] <= _report(one, t)["rel_error"] + 1e-12
    assert [h["blocks"] for h in extra["polish"]] == [1, 2]
    assert np.isclose(extra["polish"][1]["start_rel_error"], extra["polish"][0]["rel_error"], rtol=1e-9)


def test_polish_never_returns_worse_than_its_start():
    rng = np.random.default_rng(0)
    t = rng.standard_normal((16, 16))
    perm = discover_permutation(t)
    start = [Step("permutation", perm), Step("butterfly", factor_butterfly(t[:, perm]).astype(complex))]
    for its in (0, 1, 5):
        result = polish(t, start, its, real_output=True)
        assert result.final_loss <= result.start_loss
        dense = Factors(16, result.steps).to_dense().real
        assert np.isclose(np.linalg.norm(dense - t) ** 2, result.final_loss, rtol=1e-9)
    assert np.array_equal(polish(t, start, 0, real_output=True).steps[1].data, start[1].data)


def test_exact_butterfly_stays_exact():
    rng = np.random.default_rng(2)
    t = random_butterfly(16, rng)[:, rng.permutation(16)]
    steps, extra = solve_approximate(t)
    assert extra["closed_form_rel_error"] < 1e-12
    assert _report(steps, t)["rel_error"] < 1e-12
    assert Factors(16, steps).structure == "BP"  # complex target: no real step


@pytest.mark.parametrize("bad", [0, 9, -1, 1.5, True, "2"])
def test_budget_out_of_range(bad):
    with pytest.raises(BudgetError, match="budget must be an integer from 1 to 8"):
        solve_approximate(np.eye(8), budget=bad)
    assert issubclass(BudgetError, ValueError) and issubclass(BudgetError, BflyError)


def test_singular_matrix_is_approximated_without_error():
    t = np.zeros((8, 8))
    t[:, 0] = 1.0  # rank one, singular: still a valid (here exact) approximation problem
    steps, _ = solve_approximate(t)
    assert _report(steps, t)["rel_error"] < 1e-12


def test_iteration_schedule_shrinks_with_size():
    assert iterations(8, 1) == 200
    assert iterations(1024, 1) == 10
    assert iterations(512, 1) > iterations(512, 2)
