"""The real rank-2 route: exact for DCT/DST (both scalings) with discovered, shuffled orders."""

from __future__ import annotations

import numpy as np
import pytest

from bfly_cli import transforms
from bfly_cli.factors import Factors, Step, rank2_multiply
from bfly_cli.learning import learn
from bfly_cli.errors import BflyError
from bfly_cli.solvers import RouteUnavailable
from bfly_cli.solvers.closed_form.rank2_factor import factor_rank2
from bfly_cli.solvers.closed_form.rank2_route import solve_real_rank2


def _rel(steps: list[Step], t: np.ndarray) -> float:
    dense = Factors(t.shape[0], steps).to_dense()
    return float(np.linalg.norm(dense - t) / np.linalg.norm(t))


@pytest.mark.parametrize("name,norm", [("dct", None), ("dst", None), ("dct", "ortho"), ("dst", "ortho")])
@pytest.mark.parametrize("n", [8, 16, 64])
@pytest.mark.parametrize("shuffle", [False, True])
def test_cosine_transforms_exact_with_discovered_order(name: str, norm, n: int, shuffle: bool) -> None:
    t = transforms.build(name, n, **({"norm": norm} if norm else {}))
    if shuffle:
        t = t[:, np.random.default_rng(n + 7).permutation(n)]
    steps, _ = solve_real_rank2(t)
    assert [s.kind for s in steps] == ["permutation", "rank2"]
    assert _rel(steps, t) <= 1e-12


@pytest.mark.parametrize("n", [16, 32, 64])
@pytest.mark.parametrize("shuffle", [False, True])
def test_hartley_exact(n: int, shuffle: bool) -> None:
    """Columns n and -n share their planes at every level: classes, not groups, resolve it."""
    t = transforms.build("hartley", n)
    if shuffle:
        t = t[:, np.random.default_rng(n).permutation(n)]
    steps, meta = solve_real_rank2(t)
    assert meta["rank2_order"] == "consistent"
    assert _rel(steps, t) <= 1e-12


def test_shuffled_dct_128_exact() -> None:
    t = transforms.build("dct", 128)
    t = t[:, np.random.default_rng(128).permutation(128)]
    assert _rel(solve_real_rank2(t)[0], t) <= 1e-12


def test_discovery_is_deterministic() -> None:
    t = transforms.build("hartley", 64)[:, np.random.default_rng(9).permutation(64)]
    first, second = solve_real_rank2(t)[0], solve_real_rank2(t.copy())[0]
    assert np.array_equal(first[0].data, second[0].data)
    assert first[1].data.tobytes() == second[1].data.tobytes()


def test_real_part_of_random_complex_bp_with_shuffled_columns() -> None:
    """Any Re(B P): the order is discovered from the matrix alone, not only for known transforms."""
    rng = np.random.default_rng(5)
    n = 64
    tw = rng.standard_normal((6, n // 2, 2, 2)) + 1j * rng.standard_normal((6, n // 2, 2, 2))
    t = Factors(n, [Step("permutation", rng.permutation(n)), Step("butterfly", tw), Step("real")]).to_dense()
    steps, meta = solve_real_rank2(t)
    assert meta["rank2_order"] == "consistent"
    assert _rel(steps, t) <= 1e-12


def test_real_part_of_random_complex_bp_in_fixed_order_is_rank2_exact() -> None:
    """Any Re(B) has rank-2 blocks: the closed form recovers it for the given order."""
    rng = np.random.default_rng(3)
    n = 32
    tw = rng.standard_normal((5, n // 2, 2, 2)) + 1j * rng.standard_normal((5, n // 2, 2, 2))
    t = Factors(n, [Step("butterfly", tw), Step("real")]).to_dense()
    stages = factor_rank2(t)
    assert np.linalg.norm(rank2_multiply(stages, np.eye(n)).T - t) <= 1e-12 * np.linalg.norm(t)


def test_randn_is_not_rank2() -> None:
    t = transforms.build("randn", 32)
    steps, meta = solve_real_rank2(t)
    assert meta["rank2_order"] == "best effort"
    assert _rel(steps, t) > 1e-3


def test_complex_matrix_is_refused() -> None:
    with pytest.raises(RouteUnavailable):
        solve_real_rank2(transforms.build("dft", 8))
    with pytest.raises(BflyError, match="real matrices"):
        learn(transforms.build("dft", 8), solver="real_rank2")


def test_rank2_param_count_and_structure() -> None:
    f = learn(transforms.build("dct", 16), solver="real_rank2")
    assert f.structure == "QP"
    assert f.n_params() == 8 * 16 * 3
    assert f.meta["exact"]


@pytest.mark.parametrize("name", ["convolution", "legendre", "randn"])
@pytest.mark.parametrize("shuffle", [False, True])
def test_strict_rejects_matrices_without_a_rank2_order(name: str, shuffle: bool) -> None:
    """The auto solver's mode: no rank-2 order is reported as unavailable, not fitted."""
    t = transforms.build(name, 64)
    if shuffle:
        t = t[:, np.random.default_rng(3).permutation(64)]
    with pytest.raises(RouteUnavailable, match="rank-2"):
        solve_real_rank2(t, strict=True)


@pytest.mark.parametrize("name,norm", [("dct", None), ("dst", "ortho"), ("hartley", None)])
def test_strict_keeps_exact_orders(name: str, norm) -> None:
    t = transforms.build(name, 128, **({"norm": norm} if norm else {}))
    t = t[:, np.random.default_rng(11).permutation(128)]
    strict, loose = solve_real_rank2(t, strict=True)[0], solve_real_rank2(t)[0]
    assert np.array_equal(strict[0].data, loose[0].data)
    assert _rel(strict, t) <= 1e-12


def test_naive_hartley_1024_is_exact_to_its_own_rounding() -> None:
    """Built without the ``mod N`` reduction the Hartley matrix is 1.3e-13 off bfly's (N = 1024):
    every plane test used to meet a 1e-16 "zero" there and reject it; now the route projects."""
    n = 1024
    k = np.arange(n)
    angle = 2 * np.pi * np.outer(k, k) / n
    t = (np.cos(angle) + np.sin(angle)) / np.sqrt(n)
    dist = np.linalg.norm(t - transforms.build("hartley", n)) / np.linalg.norm(t)
    steps, meta = solve_real_rank2(t, strict=True)
    probes = np.random.default_rng(0).standard_normal((16, n))  # rows: x; M x against T x
    err = np.linalg.norm(Factors(n, steps).apply_reference(probes) - probes @ t.T) / np.linalg.norm(probes @ t.T)
    assert err <= 10 * dist + 1e-14
    assert meta["rank2_noise_floor"] <= 10 * dist
