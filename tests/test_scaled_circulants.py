"""Circulants scaled on both sides, ``diag(r) C diag(s)``, of every kind of filter (issue #12, points 4-5).

Before the scalings were divided out (``closed_form/scaled_circulant.py``), the two-sided read-off
missed the singular Laplacian ``[1, -2, 1]`` at N >= 64 (100-600x its noise) and noisy symmetric
5-tap filters. Inputs are built here with ``scipy.linalg.circulant`` or ``np.roll``, scalings
drawn at random (signed, and complex for a complex filter), Gaussian noise of relative size eps.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

import bfly_cli
from bfly_cli.factors import Factors
from bfly_cli.solvers import RouteUnavailable
from bfly_cli.solvers.closed_form.scaled_circulant import row_column_scalings
from bfly_cli.solvers.closed_form.two_butterfly import solve_two_butterfly

KINDS = ["symmetric3", "symmetric5", "laplacian", "causal3", "causal5", "gapped", "sparse", "dense"]


def _filter(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    c = np.zeros(n)
    if kind.startswith("symmetric"):
        half = rng.standard_normal(int(kind[-1]) // 2 + 1)
        for m, v in enumerate(half):
            c[m] = c[-m] = v
    elif kind == "laplacian":  # singular: one zero eigenvalue
        c[[0, 1, -1]] = -2.0, 1.0, 1.0
    elif kind.startswith("causal"):
        c[:int(kind[-1])] = rng.standard_normal(int(kind[-1]))
    elif kind == "gapped":  # taps at +-1 only: rows and columns fall into two linked classes
        c[[1, -1]] = rng.standard_normal(2)
    elif kind == "sparse":
        idx = rng.choice(n, max(2, n // 8), replace=False)
        c[idx] = rng.standard_normal(idx.size)
    else:
        c = rng.standard_normal(n)
    return c


def _scaled(kind: str, n: int, seed: int, eps: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    r = rng.uniform(0.5, 2, n) * rng.choice([-1.0, 1.0], n)
    s = rng.uniform(0.5, 2, n)
    a = r[:, None] * scipy.linalg.circulant(_filter(kind, n, rng)) * s[None, :]
    if eps:
        noise = rng.standard_normal(a.shape)
        a = a + eps * np.linalg.norm(a) / np.linalg.norm(noise) * noise
    return a


def _rel_error(a: np.ndarray, steps: list) -> float:
    got = Factors(a.shape[0], steps).apply_reference(np.eye(a.shape[0])).T  # columns: M e_j
    return float(np.linalg.norm(got - a) / np.linalg.norm(a))


@pytest.mark.parametrize("eps", [0.0, 1e-12, 1e-9, 1e-6])
@pytest.mark.parametrize("n", [16, 64])
@pytest.mark.parametrize("kind", KINDS)
def test_every_filter_is_recovered_to_its_noise(kind: str, n: int, eps: float) -> None:
    for seed in range(3):
        a = _scaled(kind, n, seed, eps)
        steps, meta = solve_two_butterfly(a)
        assert meta["two_butterfly_basis"] == "scaled-circulant"
        assert _rel_error(a, steps) <= 10 * eps + 1e-14


@pytest.mark.parametrize("kind", ["laplacian", "symmetric5", "causal3"])
def test_factorize_finds_the_two_butterflies_at_n_256(kind: str) -> None:
    eps = 1e-9
    a = _scaled(kind, 256, 5, eps)
    f = bfly_cli.factorize(a)
    assert f.meta["structure"] == "RBPBP"
    assert f.meta["rel_error"] <= 10 * eps


def test_complex_scalings_of_a_complex_filter() -> None:
    rng = np.random.default_rng(3)
    n = 64
    c = np.zeros(n, dtype=complex)
    c[[0, 1, -1]] = rng.standard_normal(3) + 1j * rng.standard_normal(3)
    r = rng.uniform(0.5, 2, n) * np.exp(2j * np.pi * rng.random(n))
    s = rng.uniform(0.5, 2, n) * np.exp(2j * np.pi * rng.random(n))
    a = r[:, None] * np.stack([np.roll(c, j) for j in range(n)], axis=1) * s[None, :]  # np.roll columns
    steps, meta = solve_two_butterfly(a)
    assert meta["two_butterfly_basis"] == "scaled-circulant"
    assert _rel_error(a, steps) <= 1e-14


@pytest.mark.parametrize("kind", ["laplacian", "gapped", "dense"])
def test_the_scalings_leave_a_circulant(kind: str) -> None:
    a = _scaled(kind, 32, 1, 0.0)
    r, s = row_column_scalings(a, 1e-2)
    u = a / (r[:, None] * s[None, :])
    # a circulant: each row is the one above it rolled by one
    assert np.linalg.norm(np.roll(u, 1, axis=(0, 1)) - u) <= 1e-13 * np.linalg.norm(u)


@pytest.mark.parametrize("kind", ["random", "dft-rows", "circulant-columns-shuffled"])
def test_other_matrices_are_screened_out(kind: str) -> None:
    rng = np.random.default_rng(4)
    n = 64
    if kind == "random":
        a = rng.standard_normal((n, n))
    elif kind == "dft-rows":
        a = np.fft.fft(np.eye(n), axis=0)[rng.permutation(n)]
    else:
        a = scipy.linalg.circulant(rng.standard_normal(n))[:, rng.permutation(n)]
    with pytest.raises(RouteUnavailable, match="screened out"):
        row_column_scalings(a, 1e-2)
