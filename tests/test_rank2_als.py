"""bfly_cli/solvers/gradient/rank2_als.py: normal equations and alternating least squares, rank-2 model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.func import jacfwd

from bfly_cli import transforms
from bfly_cli.factors import Factors, Step
from bfly_cli.solvers.gradient.rank2_als import (
    _solve_level,
    alternate,
    model_output,
    normal_equations,
    param_index,
    readout,
    relative_loss,
    scaled_solver,
    states_before,
)
from bfly_cli.solvers.gradient.refine import refine_steps
from bfly_cli.torch_ops import rank2_multiply_torch


def _random_rank2_problem(n: int, seed: int):
    """An exactly rank-2 target (random stages, random order) and a random start, transposed."""
    rng = np.random.default_rng(seed)
    levels = int(np.log2(n))
    perm = rng.permutation(n)
    truth = torch.as_tensor(rng.standard_normal((levels, n // 2, 2, 2, 2, 2)) * 0.7)
    start = torch.as_tensor(rng.standard_normal((levels, n // 2, 2, 2, 2, 2)) * 0.5)
    return perm, model_output(perm, truth), start


def _dense_loss(perm, stages, target_t) -> float:
    """Relative squared error by the numpy reference product (independent of the module)."""
    n = len(perm)
    dense = Factors(n, [Step("permutation", np.asarray(perm)), Step("rank2", np.asarray(stages))]).to_dense()
    target = np.asarray(target_t).T
    return float(np.sum((dense - target) ** 2) / np.sum(target**2))


def test_rank2_normal_equations_match_the_explicit_jacobian():
    n = 8
    target = torch.as_tensor(transforms.build("dct", n).T)
    perm = np.random.default_rng(0).permutation(n)
    stages = torch.as_tensor(np.random.default_rng(1).standard_normal((3, n // 2, 2, 2, 2, 2)))
    eye = torch.eye(n, dtype=torch.float64)

    def resid(st):
        return (rank2_multiply_torch(st, eye[:, perm]) - target).reshape(-1)

    jac = jacfwd(resid)(stages).reshape(n * n, -1)
    jtj, jtr = normal_equations(torch.as_tensor(perm), stages, 1.0, jac.T @ resid(stages))
    assert torch.allclose(jtj, jac.T @ jac, atol=1e-12)


def test_level_solve_is_the_exact_least_squares_of_that_level():
    """One level with the others fixed: the solve matches lstsq on the explicit Jacobian."""
    n, lev = 8, 1
    perm, target, stages = _random_rank2_problem(n, 3)
    before, after = states_before(perm, stages)[lev], readout(stages, lev)
    solved = _solve_level(before, after, target, stages[lev], param_index(n, lev))
    eye = torch.eye(n, dtype=torch.float64)

    def resid(level_entries):
        st = torch.cat([stages[:lev], level_entries[None], stages[lev + 1:]])
        return (rank2_multiply_torch(st, eye[:, perm]) - target).reshape(-1)

    jac = jacfwd(resid)(stages[lev]).reshape(n * n, -1)
    best = torch.linalg.lstsq(jac, -(resid(stages[lev]) - jac @ stages[lev].reshape(-1))).solution
    assert torch.allclose(resid(solved).square().sum(), resid(best.reshape(stages[lev].shape)).square().sum(),
                          rtol=1e-8, atol=1e-20)


@pytest.mark.parametrize("seed", [0, pytest.param(1, marks=pytest.mark.slow)])
def test_alternating_least_squares_reaches_an_exact_rank2_target(seed):
    n = 16
    perm, target, start = _random_rank2_problem(n, seed)
    steps, loss = refine_steps(target, [Step("permutation", perm), Step("rank2", start.numpy())], 100, 0.0)
    stages, final = alternate(perm, torch.as_tensor(steps[1].data), target, 1e-24)
    assert final <= min(loss, 1e-20)
    assert _dense_loss(perm, stages, target) <= 1e-20  # the returned stages, not just the number


def test_alternating_least_squares_never_returns_worse_than_its_start():
    perm, _, start = _random_rank2_problem(8, 5)
    target = torch.as_tensor(np.random.default_rng(9).standard_normal((8, 8)))  # not rank-2 exact
    stages, loss = alternate(perm, start, target, 0.0, sweeps=5)
    assert loss == pytest.approx(_dense_loss(perm, stages, target), rel=1e-9)
    assert loss <= _dense_loss(perm, start, target) * (1 + 1e-12)


def test_relative_loss_is_the_dense_relative_squared_error():
    perm, target, start = _random_rank2_problem(8, 6)
    assert relative_loss(perm, start, target, float(target.square().sum())) == pytest.approx(
        _dense_loss(perm, start, target), rel=1e-12)


def test_level_solver_damps_a_slightly_indefinite_system_instead_of_failing():
    gram = torch.tensor([[1.0, 1.0 + 1e-11], [1.0 + 1e-11, 1.0]], dtype=torch.float64)  # eigenvalue -1e-11
    solve = scaled_solver(gram)
    assert solve is not None
    x = solve(torch.tensor([1.0, 1.0], dtype=torch.float64))
    assert torch.isfinite(x).all() and torch.allclose(gram @ x, torch.tensor([1.0, 1.0], dtype=torch.float64), atol=1e-3)
    assert scaled_solver(torch.tensor([[1.0, 2.0], [2.0, 1.0]], dtype=torch.float64)) is None  # eigenvalue -1
