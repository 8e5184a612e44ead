"""Rows shuffled in a symmetric transform = columns shuffled in its transpose (bfly_cli/chain_algebra.py).

The B.P and rank-2 routes try ``T^T`` with the one-sided column discovery before their two-sided
searches, and transpose the chain back. Targets are built by another road (a naive Hartley
formula without ``mod N``, scipy's DFT, scipy's Hadamard), then shuffled on their rows, stored
in float32 or perturbed by noise; errors are measured on the dense product of the returned
steps. The Hartley transform with its rows shuffled at N >= 64 was unreachable before (the
two-sided rank-2 search cannot seed on it) and fell to a 0.9-error approximation.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft
import scipy.linalg

import bfly_cli
from bfly_cli.factors import Factors, Step
from bfly_cli.solvers.closed_form.bp_route import solve_bp
from bfly_cli.chain_algebra import transpose_steps
from bfly_cli.solvers.closed_form.rank2_route import solve_real_rank2
from conftest import add_noise, dense_error


def naive_hartley(n: int) -> np.ndarray:
    a = 2 * np.pi * np.outer(np.arange(n), np.arange(n)) / n
    return (np.cos(a) + np.sin(a)) / np.sqrt(n)


@pytest.mark.parametrize("n", [4, 16, 64])
def test_rank2_step_transposes_exactly(n: int) -> None:
    rng = np.random.default_rng(n)
    levels = n.bit_length() - 1
    steps = [Step("permutation", rng.permutation(n)), Step("rank2", rng.standard_normal((levels, n // 2, 2, 2, 2, 2)))]
    dense = Factors(n, steps).apply_reference(np.eye(n)).T
    back = transpose_steps(steps)
    assert Factors(n, back).structure == "PQP"
    assert dense_error(back, dense.T) < 1e-14


@pytest.mark.parametrize("n", [64, 256])
@pytest.mark.parametrize("perturb", ["clean", "float32", "noise"])
def test_hartley_rows_shuffled_is_exact(n: int, perturb: str) -> None:
    rng = np.random.default_rng(7 * n)
    a = naive_hartley(n)[rng.permutation(n)]
    eps = 1e-14
    if perturb == "float32":
        a = a.astype(np.float32).astype(np.float64)
        eps = 6e-8
    elif perturb == "noise":
        a, eps = add_noise(a, 1e-9, rng), 1e-9
    steps, meta = solve_real_rank2(a, strict=True)
    assert Factors(n, steps).structure == "PQP" and meta["rank2_rows"] == "permuted"
    assert dense_error(steps, a) <= 10 * eps + 1e-14


@pytest.mark.parametrize("name", ["dft", "hadamard"])
def test_symmetric_bp_rows_shuffled_by_transpose(name: str) -> None:
    n = 128
    rng = np.random.default_rng(3)
    s = scipy.fft.fft(np.eye(n), axis=0) if name == "dft" else scipy.linalg.hadamard(n).astype(float)
    a = add_noise(s[rng.permutation(n)], 1e-10, rng)
    steps, meta = solve_bp(a)
    assert Factors(n, steps).structure == "PBP" and meta["bp_rows"] == "permuted"
    assert dense_error(steps, a) <= 1e-9


def test_hartley_rows_shuffled_end_to_end() -> None:
    n = 128
    a = naive_hartley(n)[np.random.default_rng(11).permutation(n)]
    factors = bfly_cli.factorize(a)
    assert factors.structure == "PQP"
    assert factors.meta["exact"] is True
    assert dense_error(factors.steps, a) < 1e-13
