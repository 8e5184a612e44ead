"""The two-butterfly route: exact for (shuffled) convolutions and butterfly-diagonalized matrices,
RouteUnavailable with a reason everywhere else."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from bfly_cli import transforms
from bfly_cli.factors import Factors, butterfly_multiply
from bfly_cli.metrics import error_report
from bfly_cli.solvers import RouteUnavailable
from bfly_cli.solvers.closed_form.eigenbasis import butterfly_eigenbasis
from bfly_cli.solvers.closed_form.butterfly_inverse import apply_inverse, bit_reversal, inverse_twiddles, reverse_stages
from bfly_cli.solvers.closed_form.two_butterfly import solve_two_butterfly

from conftest import random_butterfly


def _rel_error(steps, target) -> float:
    return error_report(Factors(target.shape[0], steps).to_dense(), target)["rel_error"]


@pytest.mark.parametrize("n", [8, 16, 32, 64])
def test_convolution_is_exact(n):
    c = transforms.build("convolution", n)
    steps, extra = solve_two_butterfly(c)
    assert _rel_error(steps, c) <= 1e-12
    assert Factors(n, steps).structure == "RBPBP"
    assert extra["two_butterfly_basis"] == "direct"


@pytest.mark.parametrize("n", [8, 32, 64])
def test_shuffled_convolution_is_exact(n):
    shuffle = np.random.default_rng(n).permutation(n)
    t = transforms.build("convolution", n, seed=3)[:, shuffle]
    steps, extra = solve_two_butterfly(t)
    assert _rel_error(steps, t) <= 1e-12
    assert extra["two_butterfly_basis"] == "column-shuffled"


def test_complex_filter_and_dyadic_convolution():
    rng = np.random.default_rng(7)
    n = 32
    c = scipy.linalg.circulant(rng.standard_normal(n) + 1j * rng.standard_normal(n))
    steps, _ = solve_two_butterfly(c)
    assert _rel_error(steps, c) <= 1e-12
    assert Factors(n, steps).structure == "BPBP"  # complex target: no real step
    h = transforms.build("hadamard", n)
    dyadic = h @ np.diag(rng.standard_normal(n)) @ h.T
    steps, _ = solve_two_butterfly(dyadic)
    assert _rel_error(steps, dyadic) <= 1e-12


def test_non_normal_matrix_diagonalized_by_a_butterfly():
    rng = np.random.default_rng(3)
    n = 16
    w = random_butterfly(n, rng)
    t = w @ np.diag(rng.standard_normal(n) + 1j * rng.standard_normal(n)) @ np.linalg.inv(w)
    steps, _ = solve_two_butterfly(t)
    assert _rel_error(steps, t) <= 1e-10


def test_eigenbasis_recovers_w_up_to_scaling():
    rng = np.random.default_rng(4)
    n = 16
    w = random_butterfly(n, rng)
    lam = rng.standard_normal(n) + 1j * rng.standard_normal(n)
    tw, values, residual = butterfly_eigenbasis(w @ np.diag(lam) @ np.linalg.inv(w))
    assert residual < 1e-12
    found = butterfly_multiply(tw, np.eye(n)).T
    # same columns up to scaling and order: W^-1 W_found is a scaled permutation matrix
    ratio = np.abs(np.linalg.solve(w, found))
    big = ratio > 1e-9 * ratio.max()
    assert np.all(big.sum(axis=0) == 1) and np.all(big.sum(axis=1) == 1)
    assert np.allclose(np.sort_complex(values), np.sort_complex(lam), atol=1e-9)


def test_inverse_and_bit_reversed_stages():
    rng = np.random.default_rng(5)
    n = 16
    levels = 4
    tw = rng.standard_normal((levels, n // 2, 2, 2)) + 1j * rng.standard_normal((levels, n // 2, 2, 2))
    b = butterfly_multiply(tw, np.eye(n)).T
    inv, ratio = inverse_twiddles(tw)
    assert ratio > 0
    assert np.allclose(apply_inverse(inv, np.eye(n)).T @ b, np.eye(n), atol=1e-9)
    rev = bit_reversal(n)
    assert np.array_equal(rev[rev], np.arange(n))
    adjoint = reverse_stages(np.conj(np.swapaxes(tw, -1, -2)))
    assert np.allclose(butterfly_multiply(adjoint, np.eye(n)[:, rev])[:, rev].T, b.conj().T)


def test_random_matrix_is_unavailable_with_a_reason():
    t = np.random.default_rng(0).standard_normal((16, 16))
    with pytest.raises(RouteUnavailable, match="does not apply"):
        solve_two_butterfly(t)


def test_singular_matrix_with_repeated_eigenvalues_is_exact():
    # all-ones circulant: eigenvalues N, 0, 0, ...: singular, the zero eigenvalue repeated N - 1 times
    ones = np.ones((16, 16))
    steps, _ = solve_two_butterfly(ones)
    assert _rel_error(steps, ones) <= 1e-14


def test_zero_matrix_is_unavailable():
    with pytest.raises(RouteUnavailable, match="zero"):
        solve_two_butterfly(np.zeros((8, 8)))


def test_symmetric_circulant_with_repeated_eigenvalues_is_exact():
    c = np.random.default_rng(1).standard_normal(16)
    c[1:] = (c[1:] + c[1:][::-1]) / 2  # palindromic filter: lambda_k = lambda_-k
    t = scipy.linalg.circulant(c)
    steps, extra = solve_two_butterfly(t)
    assert _rel_error(steps, t) <= 1e-14
    assert extra["two_butterfly_basis"] == "direct"


def test_bad_shapes_are_unavailable():
    with pytest.raises(RouteUnavailable, match="power-of-two"):
        solve_two_butterfly(np.ones((6, 6)))
    with pytest.raises(RouteUnavailable, match="NaN"):
        solve_two_butterfly(np.full((4, 4), np.nan))


def test_float32_input_gives_complex64_twiddles():
    c = transforms.build("convolution", 16).astype(np.float32)
    steps, _ = solve_two_butterfly(c)
    assert all(s.data.dtype == np.complex64 for s in steps if s.kind == "butterfly")
    assert _rel_error(steps, c.astype(np.float64)) <= 1e-6


def test_frame_correction_is_the_least_squares_solution():
    """The per-level frame correction solves ``min ||off + L diag(e) - diag(e) R||_F``: checked
    against ``numpy.linalg.lstsq`` on the explicit (h^2 x h) system, with halves that are not
    symmetric (its right-hand side once used ``R^T``; the correction then removed only half of
    the off-diagonal mass per step, and a clean N = 4096 circulant read off at 1.7e-13)."""
    from bfly_cli.solvers.closed_form.eigenbasis import _gauge_fit

    rng = np.random.default_rng(7)
    count, h = 2, 12
    left, right, off = (rng.standard_normal((count, h, h)) + 1j * rng.standard_normal((count, h, h)) for _ in range(3))
    e = _gauge_fit(off, left, right, steps=4 * h)
    for k in range(count):
        system = np.zeros((h * h, h), dtype=complex)
        for j in range(h):
            column = np.zeros((h, h), dtype=complex)
            column[:, j] += left[k][:, j]
            column[j, :] -= right[k][j, :]
            system[:, j] = column.reshape(-1)
        expected = np.linalg.lstsq(system, -off[k].reshape(-1), rcond=None)[0]
        assert np.max(np.abs(e[k] - expected)) <= 1e-9 * np.max(np.abs(expected))
