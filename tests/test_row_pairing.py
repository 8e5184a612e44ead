"""Two-sided B.P (``P_out B P_in``): both orders discovered, with inputs built by another road.

Targets come from scipy (DFT, Hadamard) or from random complex twiddles multiplied out densely
here (not by the code under test's factorization), then rows and/or columns are permuted, noise
of relative size eps is added, and the factors are multiplied out densely to measure the error.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft
import scipy.linalg

from bfly_cli.factors import Factors
from bfly_cli.solvers import RouteUnavailable
from bfly_cli.solvers.auto import solve_auto
from bfly_cli.solvers.closed_form.bp_route import solve_bp
from bfly_cli.solvers.closed_form.row_pairing import _compose, discover_two_sided
from conftest import dense_butterfly, dense_error, haar


def _targets(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"dft": scipy.fft.fft(np.eye(n), axis=0, norm="ortho"),
            "hadamard": scipy.linalg.hadamard(n) / np.sqrt(n),
            "random": dense_butterfly(n, rng)}


def _perturb(a: np.ndarray, eps: float, rng: np.random.Generator) -> np.ndarray:
    noise = rng.standard_normal(a.shape)
    return a + eps * np.linalg.norm(a) * noise / np.linalg.norm(noise)


@pytest.mark.parametrize("n", [8, 64, pytest.param(256, marks=pytest.mark.slow)])
@pytest.mark.parametrize("shuffle", ["rows", "both"])
@pytest.mark.parametrize("eps", [0.0, 1e-12, 1e-6])
def test_two_sided_bp_recovered_within_noise(n: int, shuffle: str, eps: float) -> None:
    rng = np.random.default_rng(n + int(eps * 1e12))
    for name, s in _targets(n, rng).items():
        a = s[rng.permutation(n)]
        if shuffle == "both":
            a = a[:, rng.permutation(n)]
        a = _perturb(a, eps, rng)
        steps, meta = solve_bp(a)
        assert [st.kind for st in steps] == ["permutation", "butterfly", "permutation"], name
        assert meta["bp_rows"] == "permuted"
        assert dense_error(steps, a) <= 10 * eps + 1e-14, name


def test_auto_reports_pbp_for_shuffled_rows() -> None:
    rng = np.random.default_rng(3)
    a = scipy.fft.fft(np.eye(128), axis=0, norm="ortho")[rng.permutation(128)]
    steps, meta = solve_auto(a)
    assert meta["auto_route"] == "bp" and Factors(128, steps).structure == "PBP"
    assert dense_error(steps, a) < 1e-14


def test_natural_rows_keep_the_one_sided_form() -> None:
    a = scipy.linalg.hadamard(64) / 8.0
    steps, meta = solve_bp(a[:, np.random.default_rng(0).permutation(64)])
    assert len(steps) == 2 and meta["bp_rows"] == "natural"


def test_same_input_same_bytes() -> None:
    a = scipy.fft.fft(np.eye(64), axis=0)[np.random.default_rng(1).permutation(64)]
    first, _ = solve_bp(a)
    second, _ = solve_bp(a.copy())
    assert all(np.array_equal(x.data, y.data) for x, y in zip(first, second))


@pytest.mark.parametrize("kind", ["dct", "circulant", "randn"])
def test_not_a_two_sided_bp_is_rejected(kind: str) -> None:
    n = 64
    rng = np.random.default_rng(0)
    a = {"dct": scipy.fft.dct(np.eye(n), axis=0), "circulant": scipy.linalg.circulant(rng.standard_normal(n)),
         "randn": rng.standard_normal((n, n))}[kind]
    with pytest.raises(RouteUnavailable):
        solve_bp(a[rng.permutation(n)])


def test_compose_places_pairs_at_b_and_b_plus_half() -> None:
    # Level 0 pairs rows (5, 2), (0, 7), (3, 6), (1, 4) as [tops, bottoms]; level 1 pairs those pairs.
    top = np.array([5, 0, 3, 1, 2, 7, 6, 4])
    level1 = np.array([1, 3, 0, 2])
    rows = _compose([top, level1])
    assert rows.tolist() == [0, 1, 5, 3, 7, 4, 2, 6]


def test_discovered_orders_make_a_butterfly() -> None:
    rng = np.random.default_rng(7)
    s = dense_butterfly(32, rng)
    a = s[rng.permutation(32)][:, rng.permutation(32)]
    rows, cols = discover_two_sided(a)
    ordered = a[rows][:, cols]
    # every block of every split is rank one (checked with SVDs here, not with the solver's code)
    for lev in range(1, 5):
        hi, lo = 32 >> lev, 1 << lev
        blocks = ordered.reshape(hi, lo, hi, lo).transpose(1, 2, 0, 3)
        sing = np.linalg.svd(blocks, compute_uv=False)
        assert np.max(sing[..., 1] / sing[..., 0]) < 1e-12


def test_sparse_rows_discovered_as_a_butterfly() -> None:
    # Haar rows vanish on whole half-blocks: the dense pairing cannot decide, the sparse one can.
    rng = np.random.default_rng(11)
    a = haar(32)[:, rng.permutation(32)]
    rows, cols = discover_two_sided(a)
    ordered = a[rows][:, cols]
    for lev in range(1, 5):
        hi, lo = 32 >> lev, 1 << lev
        blocks = ordered.reshape(hi, lo, hi, lo).transpose(1, 2, 0, 3)
        sing = np.linalg.svd(blocks, compute_uv=False)
        assert np.all(sing[..., 1] <= 1e-12 * np.maximum(sing[..., 0], 1e-300))


def test_dense_inputs_skip_the_sparse_certificate() -> None:
    from bfly_cli.solvers.closed_form.row_pairing import _has_small_entries

    assert not _has_small_entries(scipy.fft.fft(np.eye(256), axis=0))
    assert not _has_small_entries(scipy.linalg.hadamard(256) / 16.0)
    assert _has_small_entries(haar(256))


@pytest.mark.parametrize("n", [64, 256])
def test_haar_in_pywt_order_is_pbp(n: int) -> None:
    a = haar(n)
    steps, meta = solve_bp(a)
    assert meta["bp_rows"] == "permuted"
    assert dense_error(steps, a) < 1e-14
