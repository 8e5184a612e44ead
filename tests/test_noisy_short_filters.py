"""Noisy circulants of short and symmetric filters, columns shuffled or both sides shuffled
(issue 12; closed_form/circulant_fit.py, the two-butterfly route's circulant read-off).

A symmetric filter has pairs of equal eigenvalues that noise splits at random, and a short one has
mostly zero taps that noise fills; the route fits the least-squares circulant, restores the
filter's symmetry and zeros within the noise, and reads the butterfly basis off that clean
matrix. Targets are built here by two roads (scipy.linalg.circulant, and np.roll of a naive
filter), shuffled with numpy permutations and perturbed by relative Gaussian noise; errors are
measured on the dense product of the returned steps.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

import bfly_cli
from bfly_cli.factors import Factors
from bfly_cli.solvers import RouteUnavailable
from bfly_cli.solvers.closed_form.circulant_fit import circulant_matrix, fit_circulant_columns
from bfly_cli.solvers.closed_form.two_butterfly import solve_two_butterfly
from conftest import add_noise, dense_error


def short_filter(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Taps centred on index 0 (a symmetric kernel) or starting at an odd offset (causal)."""
    c = np.zeros(n)
    if kind == "laplace3":  # the second difference [1, -2, 1], scaled at random
        c[[-1, 0, 1]] = rng.uniform(0.5, 2) * np.array([1.0, -2.0, 1.0])
    elif kind == "sym3":
        a, b = rng.standard_normal(2)
        c[[-1, 0, 1]] = [a, b, a]
    elif kind == "sym5":
        a, b, d = rng.standard_normal(3)
        c[[-2, -1, 0, 1, 2]] = [a, b, d, b, a]
    elif kind == "offset3":  # a symmetric 3-tap kernel whose taps straddle index 4
        c[3:6] = [1.0, 2.0, 1.0]
    return c


def by_scipy(c: np.ndarray) -> np.ndarray:
    return scipy.linalg.circulant(c)


def by_roll(c: np.ndarray) -> np.ndarray:
    """Column j is the filter rolled by j: the naive definition, entry by entry."""
    return np.stack([np.roll(c, j) for j in range(c.size)], axis=1)


def shuffled(a: np.ndarray, how: str, rng: np.random.Generator) -> np.ndarray:
    n = a.shape[0]
    a = a[:, rng.permutation(n)]
    return a[rng.permutation(n)] if how == "both" else a


CASES = [(kind, road) for kind in ("laplace3", "sym3", "sym5") for road in ("scipy", "roll")]


@pytest.mark.parametrize("n", [16, 64, pytest.param(256, marks=pytest.mark.slow)])
@pytest.mark.parametrize("eps", [1e-12, 1e-9])
@pytest.mark.parametrize("how", ["columns", "both"])
@pytest.mark.parametrize("kind, road", CASES)
def test_noisy_symmetric_short_filter_is_recovered(kind: str, road: str, how: str, eps: float, n: int) -> None:
    rng = np.random.default_rng([n, int(-np.log10(eps)), len(kind), len(road), len(how)])
    c = short_filter(kind, n, rng)
    a = add_noise(shuffled(by_scipy(c) if road == "scipy" else by_roll(c), how, rng), eps, rng)
    steps, meta = solve_two_butterfly(a)
    assert dense_error(steps, a) <= 10 * eps + 1e-14
    expected = "RBPBP" if how == "columns" else "RPBPBP"
    assert Factors(n, steps).structure == expected
    assert meta["two_butterfly_basis"] == ("column-shuffled" if how == "columns" else "both-shuffled")


@pytest.mark.parametrize("eps", [1e-12, 1e-9])
def test_noisy_unshuffled_kernels_are_direct_and_at_the_noise(eps: float) -> None:
    rng = np.random.default_rng(11)
    for kind in ("sym3", "sym5", "laplace3"):
        a = add_noise(by_roll(short_filter(kind, 256, rng)), eps, rng)
        steps, meta = solve_two_butterfly(a)
        assert meta["two_butterfly_basis"] == "direct"
        assert dense_error(steps, a) <= 2 * eps  # the least-squares circulant: about eps itself


def test_noisy_dense_circulant_is_at_the_noise() -> None:
    rng = np.random.default_rng(12)
    for eps in (1e-12, 1e-9, 1e-6):
        a = add_noise(by_scipy(rng.standard_normal(128)), eps, rng)
        steps, _ = solve_two_butterfly(a)
        assert dense_error(steps, a) <= 2 * eps


def test_a_clean_kernel_off_its_axis_is_exact() -> None:
    """Taps 3..5 of N: the eigenbasis read-off fails on this rotation; another one is taken."""
    a = by_scipy(short_filter("offset3", 64, np.random.default_rng(0)))
    steps, meta = solve_two_butterfly(a)
    assert dense_error(steps, a) <= 1e-14
    assert meta["two_butterfly_basis"] == "direct"


def test_dense_circulant_whose_first_walk_steps_are_even() -> None:
    """Both sides shuffled: the 4 most isolated values of T T^H and their twins sit at even cyclic
    distances (no walk along them closes); the walk must go on to an odd one."""
    n = 64
    rng = np.random.default_rng(2 * 31 + n)
    a = by_scipy(rng.standard_normal(n))
    a = a[:, rng.permutation(n)][rng.permutation(n)]
    steps, meta = solve_two_butterfly(a)
    assert meta["two_butterfly_basis"] == "both-shuffled"
    assert dense_error(steps, a) <= 1e-14


def test_fit_orders_the_columns_and_restores_symmetry_and_zeros() -> None:
    rng = np.random.default_rng(3)
    n = 128
    c = short_filter("sym5", n, rng)
    perm = rng.permutation(n)
    a = add_noise(by_roll(c)[:, perm], 1e-9, rng)
    fit = fit_circulant_columns(a, 1e-2)
    assert 0.5e-9 <= fit.spread <= 2e-9  # the noise outside the circulants, about eps
    order, filt = fit.rotations()[0]  # an even filter comes first, on its axis
    assert np.array_equal(filt, np.roll(filt[::-1], 1))  # even, exactly
    assert np.count_nonzero(filt) == 5  # the noise taps are zeroed
    assert np.abs(filt - c).max() <= 1e-9 * np.abs(c).max()  # the true kernel, to the noise per tap
    clean = circulant_matrix(filt)
    assert np.linalg.norm(a[:, order] - clean) <= 1.1e-9 * np.linalg.norm(a)


def test_a_matrix_of_another_class_is_no_circulant() -> None:
    rng = np.random.default_rng(4)
    with pytest.raises(RouteUnavailable, match="cyclic shifts"):
        fit_circulant_columns(rng.standard_normal((64, 64)), 1e-2)


@pytest.mark.parametrize("how", ["columns", "both"])
def test_factorize_end_to_end(how: str) -> None:
    rng = np.random.default_rng(5)
    n, eps = 64, 1e-9
    a = add_noise(shuffled(by_scipy(short_filter("sym3", n, rng)), how, rng), eps, rng)
    f = bfly_cli.factorize(a)
    assert f.meta["rel_error"] <= 10 * eps
    assert f.meta["structure"] == ("RBPBP" if how == "columns" else "RPBPBP")


@pytest.mark.slow
def test_large_short_filter_passes_its_own_screen() -> None:
    """N = 1024 (the sub-matrix screens run from N = 512): the shuffle-blind screen can reject a
    noisy short filter, so a circulant fit stands in for it; the columns stay one-sided."""
    rng = np.random.default_rng(6)
    n, eps = 1024, 1e-9
    a = add_noise(shuffled(by_roll(short_filter("laplace3", n, rng)), "columns", rng), eps, rng)
    steps, meta = solve_two_butterfly(a)
    assert meta["two_butterfly_basis"] == "column-shuffled"
    assert Factors(n, steps).structure == "RBPBP"
    assert dense_error(steps, a) <= 10 * eps
