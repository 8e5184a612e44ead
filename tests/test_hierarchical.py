"""Closed-form B.P solver: exact recovery, permutation discovery, determinism, approximations."""

from __future__ import annotations

import functools

import numpy as np
import pytest

import bfly_cli
from bfly_cli import transforms
from bfly_cli.solvers.closed_form.hierarchical import factor_butterfly
from bfly_cli.solvers.closed_form.bp_order import discover_permutation
from bfly_cli.solvers.closed_form.rank_one import rank1
from conftest import random_butterfly

hierarchical = functools.partial(bfly_cli.factorize, solver="hierarchical")


def _rel(f: bfly_cli.Factors, target: np.ndarray) -> float:
    return float(np.linalg.norm(f.to_dense() - target) / np.linalg.norm(target))


@pytest.mark.parametrize("n", [2, 4, 8, 32, 128])
@pytest.mark.parametrize("complex_", [True, False])
def test_fixed_order_butterfly_is_recovered_exactly(n: int, complex_: bool) -> None:
    b = random_butterfly(n, np.random.default_rng(n), complex_)
    tw = factor_butterfly(b)
    assert tw.shape == (n.bit_length() - 1, n // 2, 2, 2)
    assert np.iscomplexobj(tw) == complex_
    rebuilt = bfly_cli.Factors(n, [bfly_cli.Step("butterfly", tw)]).to_dense()
    assert np.linalg.norm(rebuilt - b) / np.linalg.norm(b) < 1e-13


@pytest.mark.parametrize("n", [8, 64, 256])
def test_random_bp_with_random_permutation(n: int) -> None:
    rng = np.random.default_rng(7 + n)
    target = random_butterfly(n, rng)[:, rng.permutation(n)]
    f = hierarchical(target)
    assert f.structure == "BP"
    assert _rel(f, target) < 1e-12
    assert f.meta["exact"] is True


@pytest.mark.parametrize("n", [8, 16, 64, 256, 1024])
def test_dft_exact_with_discovered_permutation(n: int) -> None:
    target = transforms.build("dft", n)
    f = hierarchical(target)
    assert f.meta["rel_error"] < 1e-12
    assert _rel(f, target) < 1e-12


@pytest.mark.parametrize("n", [16, 256])
def test_column_shuffled_dft_and_hadamard(n: int) -> None:
    rng = np.random.default_rng(n)
    for name in ("dft", "idft", "hadamard"):
        target = transforms.build(name, n)[:, rng.permutation(n)]
        assert _rel(hierarchical(target), target) < 1e-12, name


def test_real_target_gives_real_factors() -> None:
    f = hierarchical(transforms.build("hadamard", 64))
    assert f.dtype == np.float64 and f.meta["rel_error"] < 1e-14


def test_identity_and_real_random_butterfly() -> None:
    rng = np.random.default_rng(1)
    for target in (np.eye(16), random_butterfly(16, rng, complex_=False)):
        assert _rel(hierarchical(target), target) < 1e-14


def test_byte_identical_run_to_run() -> None:
    target = transforms.build("dft", 128)[:, np.random.default_rng(0).permutation(128)]
    a, b = hierarchical(target), hierarchical(target.copy())
    for sa, sb in zip(a.steps, b.steps):
        assert sa.data.tobytes() == sb.data.tobytes()


@pytest.mark.parametrize("name", ["dct", "legendre", "randn"])
def test_non_butterfly_returns_finite_approximation(name: str) -> None:
    target = transforms.build(name, 32)
    f = hierarchical(target)
    assert f.meta["exact"] is False
    assert 0 < f.meta["rel_error"] < 1.0
    assert np.isfinite(f.to_dense()).all()


def test_float32_learning() -> None:
    target = transforms.build("dft", 256)
    f = hierarchical(target, dtype="float32")
    assert f.dtype == np.complex64
    assert f.meta["rel_error"] < 1e-5 and f.meta["exact"] is True


def test_rank1_canonical_gauge_and_zero_blocks() -> None:
    rng = np.random.default_rng(0)
    u0, w0 = rng.standard_normal((5, 3)), rng.standard_normal((5, 4))
    blocks = u0[:, :, None] * w0[:, None, :]
    blocks[2] = 0
    u, w = rank1(blocks)
    np.testing.assert_allclose(u[:, :, None] * w[:, None, :], blocks, atol=1e-14)
    np.testing.assert_allclose(np.linalg.norm(u, axis=1)[[0, 1, 3, 4]], np.linalg.norm(w, axis=1)[[0, 1, 3, 4]])
    assert np.all(u[2] == 0) and np.all(w[2] == 0)
    assert np.all(u[np.arange(5), np.argmax(np.abs(u), axis=1)] >= 0)


def test_rank1_is_best_fit_for_full_rank_blocks() -> None:
    m = np.random.default_rng(2).standard_normal((4, 6, 5))
    u, w = rank1(m)
    for k in range(4):
        s = np.linalg.svd(m[k], compute_uv=False)
        resid = np.linalg.norm(m[k] - np.outer(u[k], w[k]))
        assert resid == pytest.approx(np.sqrt(np.sum(s[1:] ** 2)), rel=1e-8)


def test_tol_failure_raises_check_failed_with_factors() -> None:
    with pytest.raises(bfly_cli.CheckFailed) as info:
        hierarchical(transforms.build("dct", 16), tol=1e-12)
    assert info.value.factors.meta["rel_error"] > 1e-12
