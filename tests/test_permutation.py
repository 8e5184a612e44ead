"""Permutation discovery on sparse matrices: columns with no pair in common with the reference.

The dense cases (DFT, Hadamard, random B.P, shuffled) are covered in ``test_hierarchical.py``;
here the matrices hold exact zeros, where the one-pass reference score cannot tell halves apart.
"""

from __future__ import annotations

import numpy as np
import pytest

import bfly_cli
from bfly_cli.solvers.closed_form.bp_order import _subset_choice, discover_permutation


def _rel_error(target: np.ndarray) -> float:
    f = bfly_cli.factorize(target, solver="hierarchical")
    return float(np.linalg.norm(f.to_dense() - target) / np.linalg.norm(target))


@pytest.mark.parametrize("n", [2, 4, 8, 16, 64, 256])
def test_permutation_matrix_is_exact(n: int) -> None:
    rng = np.random.default_rng(n)
    assert _rel_error(np.eye(n)[rng.permutation(n)]) < 1e-12


@pytest.mark.parametrize("complex_", [False, True])
def test_scaled_permutation_is_exact(complex_: bool) -> None:
    rng = np.random.default_rng(3)
    n = 64
    scale = rng.standard_normal(n) + (1j * rng.standard_normal(n) if complex_ else 0)
    target = (np.eye(n) * scale)[rng.permutation(n)]
    assert _rel_error(target) < 1e-12


def test_sparse_bp_with_zero_twiddles_is_exact_at_small_n() -> None:
    rng = np.random.default_rng(5)
    n = 16
    tw = rng.standard_normal((4, n // 2, 2, 2))
    tw[:, ::2, 0, 1] = tw[:, ::2, 1, 0] = 0  # every other block diagonal: many zero 2-vectors
    dense = bfly_cli.Factors(n, [bfly_cli.Step("butterfly", tw)]).to_dense()
    assert _rel_error(dense[:, rng.permutation(n)]) < 1e-12


def test_sparse_discovery_is_deterministic_and_a_permutation() -> None:
    rng = np.random.default_rng(11)
    target = np.eye(128)[rng.permutation(128)]
    first = discover_permutation(target)
    assert np.array_equal(first, discover_permutation(target.copy()))
    assert np.array_equal(np.sort(first), np.arange(128))


def test_sparse_non_bp_matrix_still_gives_a_permutation() -> None:
    rng = np.random.default_rng(2)
    target = rng.standard_normal((32, 32)) * (rng.random((32, 32)) < 0.2)
    perm = discover_permutation(target)
    assert np.array_equal(np.sort(perm), np.arange(32))


def test_subset_choice_balances_or_refuses() -> None:
    take = _subset_choice(np.array([2, 1, 0]), np.array([0, 1, 3]), 3)
    chosen = np.where(take, [0, 1, 3], [2, 1, 0]).sum()
    assert chosen == 3
    assert _subset_choice(np.array([2]), np.array([0]), 1) is None
