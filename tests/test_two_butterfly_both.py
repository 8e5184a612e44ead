"""Circulants shuffled on both sides, ``T = P C Q`` (closed_form/cyclic_order.py + the two-butterfly
route's ``both-shuffled`` candidate).

``T T^H = P (C C^H) P^T`` hides ``Q``; a cyclic row order read off it makes ``T[pi]`` a circulant
with shuffled columns. Targets are built with scipy.linalg.circulant (another road than
``transforms/``), shuffled with numpy permutations, perturbed by relative Gaussian noise; errors
are measured on the dense product of the returned steps.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from bfly_cli.solvers import RouteUnavailable
from bfly_cli.solvers.closed_form.cyclic_order import cyclic_row_order, sorted_row_spread
from bfly_cli.solvers.closed_form.two_butterfly import solve_two_butterfly
from conftest import add_noise, dense_error


def circulant(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "dense":
        return scipy.linalg.circulant(rng.standard_normal(n))
    if kind == "complex":
        return scipy.linalg.circulant(rng.standard_normal(n) + 1j * rng.standard_normal(n))
    return scipy.linalg.circulant(np.r_[[2.0, 1.0], np.zeros(n - 3), [1.0]])  # centred 3-tap


def shuffled(c: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n = c.shape[0]
    return c[rng.permutation(n)][:, rng.permutation(n)]


@pytest.mark.parametrize("n", [16, 64, 256])
@pytest.mark.parametrize("kind, eps", [("dense", 0.0), ("dense", 1e-6), ("complex", 0.0), ("complex", 1e-9), ("3tap", 0.0)])
def test_both_sides_shuffled_is_exact(n: int, kind: str, eps: float) -> None:
    rng = np.random.default_rng(n + len(kind))
    a = shuffled(circulant(kind, n, rng), rng)
    if eps:
        a = add_noise(a, eps, rng)
    steps, meta = solve_two_butterfly(a)
    assert meta["two_butterfly_basis"] == "both-shuffled" or n == 16  # small N may be caught earlier
    assert dense_error(steps, a) <= 10 * eps + 1e-14


def test_cyclic_order_makes_the_gram_matrix_circulant() -> None:
    rng = np.random.default_rng(5)
    n = 128
    h = scipy.linalg.circulant(rng.standard_normal(n))
    h = h @ h.T
    p = rng.permutation(n)
    g = h[p][:, p]
    pi = cyclic_row_order(g, 0.0)
    ordered = g[pi][:, pi]
    rolled = np.stack([np.roll(ordered[i], -i) for i in range(n)])
    assert np.abs(rolled - rolled[0]).max() <= 1e-12 * np.abs(g).max()


def test_unitary_circulant_gives_no_order_never_a_wrong_answer() -> None:
    n = 64
    rng = np.random.default_rng(2)
    f = np.fft.fft(np.eye(n), axis=0) / np.sqrt(n)
    c = f.conj().T @ np.diag(np.exp(1j * rng.uniform(0, 2 * np.pi, n))) @ f  # all |eigenvalues| = 1
    a = shuffled(c, rng)
    with pytest.raises(RouteUnavailable, match="distinct enough"):
        cyclic_row_order(a @ a.conj().T, sorted_row_spread(a))
    with pytest.raises(RouteUnavailable):
        solve_two_butterfly(a)


def test_random_matrix_is_screened_out() -> None:
    a = np.random.default_rng(4).standard_normal((256, 256))
    assert sorted_row_spread(a) > 1e-2
    with pytest.raises(RouteUnavailable):
        solve_two_butterfly(a)
