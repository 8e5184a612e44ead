"""Structure recovery from matrices that arrive by another road (issue 12's property test).

For A = P_out D1 S D2 P_in + E, with S drawn at random from a class bfly claims (random complex
butterflies, random real rank-2 chains, circulants of dense, short, sparse and symmetric filters),
row/column orders and scalings drawn at random, and noise ||E||_F = eps ||A||_F: ``--solver auto``
must return factors within 10 eps (+1e-14) of A, with the structure of the class. Every target is
multiplied out densely here, from random twiddles or filters (not by the solvers under test), and
the error is measured on the dense product of the returned steps.

Every class supports every perturbation (``SUPPORTED``); ``MAX_N`` states where a combination is
claimed only up to a smaller N (measured, see there). The circulants of short, sparse and
symmetric filters run at N = 256 for eps in ``EPS_256`` only: the full grid there costs 40 s of
the suite, and N = 8 and 64 cover every eps.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from bfly_cli.solvers.auto import solve_auto
from conftest import add_noise, dense_butterfly, dense_error

EPS = (0.0, 1e-15, 1e-12, 1e-9, 1e-6)
SIZES = (8, 64, 256)


def rank2_chain(n: int, rng: np.random.Generator) -> np.ndarray:
    """``Re(B)`` of a random complex butterfly: every block of every split has real rank <= 2."""
    return dense_butterfly(n, rng).real


def circulant(n: int, rng: np.random.Generator, kind: str) -> np.ndarray:
    """Circulant of a dense, short (causal 5-tap), sparse (n/8 taps) or symmetric (centred 3-tap) filter."""
    c = np.zeros(n)
    if kind == "dense":
        c = rng.standard_normal(n)
    elif kind == "short":
        c[:5] = rng.standard_normal(5)
    elif kind == "sparse":
        c[rng.choice(n, max(2, n // 8), replace=False)] = rng.standard_normal(max(2, n // 8))
    else:
        c[0], c[1], c[-1] = 2.0, -1.0, -1.0
    return scipy.linalg.circulant(c) / np.sqrt(n)


def perturb(s: np.ndarray, how: str, eps: float, rng: np.random.Generator) -> np.ndarray:
    """Apply one of the perturbations, then the noise."""
    n = s.shape[0]
    a = s
    if how in ("rows", "both"):
        a = a[rng.permutation(n)]
    if how in ("columns", "both"):
        a = a[:, rng.permutation(n)]
    if how == "scaled":
        a = rng.uniform(0.5, 2.0, n)[:, None] * a * rng.uniform(0.5, 2.0, n)[None, :]
    return add_noise(a, eps, rng)


CLASSES = {
    "butterfly": lambda n, rng: dense_butterfly(n, rng),
    "rank2": rank2_chain,
    "circulant-dense": lambda n, rng: circulant(n, rng, "dense"),
    "circulant-short": lambda n, rng: circulant(n, rng, "short"),
    "circulant-sparse": lambda n, rng: circulant(n, rng, "sparse"),
    "circulant-symmetric": lambda n, rng: circulant(n, rng, "symmetric"),
}
SUPPORTED = {
    "butterfly": ("columns", "rows", "both", "scaled"),
    "rank2": ("columns", "rows", "both", "scaled"),
    "circulant-dense": ("columns", "rows", "both", "scaled"),
    "circulant-short": ("columns", "rows", "both", "scaled"),
    "circulant-sparse": ("columns", "rows", "both", "scaled"),
    "circulant-symmetric": ("columns", "rows", "both", "scaled"),
}
# Largest N at which a combination is claimed (none smaller than SIZES now: random Re(B) with its
# rows permuted, whose log-normal row energies made the two-sided seed search miss one draw in
# six at N = 256, seeds on one of its three strongest rows).
MAX_N: dict[tuple[str, str], int] = {}
EPS_256 = {"circulant-short": (0.0, 1e-9), "circulant-sparse": (0.0, 1e-6), "circulant-symmetric": (1e-15, 1e-12)}
CASES = [pytest.param(cls, how, eps, n, id=f"{cls}-{how}-{eps:g}-{n}", marks=[pytest.mark.slow] if n >= 256 else [])
         for cls, hows in SUPPORTED.items() for how in hows for eps in EPS for n in SIZES
         if n <= MAX_N.get((cls, how), n) and (n < 256 or eps in EPS_256.get(cls, EPS))]


@pytest.mark.parametrize("cls, how, eps, n", CASES)
def test_recovered_within_ten_eps(cls: str, how: str, eps: float, n: int) -> None:
    rng = np.random.default_rng([n, int(-np.log10(eps)) if eps else 0, len(how), len(cls)])
    a = perturb(CLASSES[cls](n, rng), how, eps, rng)
    steps, meta = solve_auto(a)
    assert meta["auto_route"] != "approximate", meta["auto_tried"]
    assert dense_error(steps, a) <= 10 * eps + 1e-14
