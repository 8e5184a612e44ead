"""The two-butterfly route's sub-matrix screen (N >= 512): members pass it, others stop there.

The screen checks the first split on a 128 x 128 sub-matrix; it must never reject a member (the
full read-off decides) and must reject unstructured matrices before the full read-off. Members
are built with scipy here: circulants of dense, short, symmetric filters, with columns or rows
shuffled, scaled on both sides, and a complex circulant.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft
import scipy.linalg

from bfly_cli.factors import Factors
from bfly_cli.solvers import RouteUnavailable
from bfly_cli.solvers.closed_form import two_butterfly

N = 512


def _members() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    dense = scipy.linalg.circulant(rng.standard_normal(N)) / np.sqrt(N)
    short = np.zeros(N)
    short[:5] = rng.standard_normal(5)
    symmetric = np.zeros(N)
    symmetric[[0, 1, -1]] = 2.0, -1.0, -1.0
    return {
        "dense": dense,
        "short": scipy.linalg.circulant(short),
        "symmetric": scipy.linalg.circulant(symmetric),
        "columns": dense[:, rng.permutation(N)],
        "rows": dense[rng.permutation(N)],
        "scaled": rng.uniform(0.5, 2, N)[:, None] * dense * rng.uniform(0.5, 2, N)[None, :],
        "complex": scipy.linalg.circulant(rng.standard_normal(N) + 1j * rng.standard_normal(N)),
    }


@pytest.mark.slow
@pytest.mark.parametrize("name", list(_members()))
def test_members_pass_the_screen(name: str) -> None:
    a = _members()[name]
    steps, _ = two_butterfly.solve_two_butterfly(a)
    x = np.random.default_rng(0).standard_normal((4, N))
    got = Factors(N, steps).apply_reference(x)
    assert np.linalg.norm(got - x @ a.T) <= 1e-12 * np.linalg.norm(x @ a.T)


@pytest.mark.parametrize("name", ["direct", "scaled", "column-shuffled", "row-shuffled"])
def test_screen_passes_every_candidate_of_a_member(name: str) -> None:
    two_butterfly._screen(name, _members()["dense"])  # raises if it would wrongly reject


@pytest.mark.parametrize("kind", ["randn", "dft-rows"])
def test_non_members_are_screened_out(kind: str) -> None:
    rng = np.random.default_rng(1)
    a = rng.standard_normal((N, N)) if kind == "randn" else scipy.fft.fft(np.eye(N), axis=0)[rng.permutation(N)]
    with pytest.raises(RouteUnavailable, match="screened out") as info:
        two_butterfly.solve_two_butterfly(a)
    # every candidate stopped at its screen (a unitary matrix passes both-shuffled's, whose walk
    # then finds no distinct value in T T^H = I and says so)
    assert str(info.value).count("screened out") == {"randn": 6, "dft-rows": 5}[kind]
