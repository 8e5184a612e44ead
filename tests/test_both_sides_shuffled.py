"""Matrices shuffled on both sides, ``A[p][:, q]``: both orders discovered, the result exact.

The targets are built by another road (naive formulas, scipy), never by bfly's ``transforms``;
the permutations are random. The Hartley transform is the case the two-sided rank-2 search
cannot seed on (rows k and k + N/2 are parallel on every class of level L-2): its row order
comes from a rank-one branch of its top stages (:mod:`bfly_cli.solvers.closed_form.branch_rows`).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft
import scipy.linalg

from bfly_cli.factors import Factors
from bfly_cli.solvers.auto import solve_auto
from bfly_cli.solvers.closed_form import row_pairing
from bfly_cli.solvers.closed_form.branch_rows import branch_row_orders
from bfly_cli.solvers.closed_form.rank2_order import discover_plane_permutation


def naive_hartley(n: int) -> np.ndarray:
    """``(cos + sin)(2 pi j k / N) / sqrt(N)`` with no mod-N reduction (off its structure by ~1e-16 N)."""
    k = np.arange(n, dtype=np.float64)
    a = 2 * np.pi * np.outer(k, k) / n
    return (np.cos(a) + np.sin(a)) / np.sqrt(n)


def build(name: str, n: int) -> np.ndarray:
    if name == "hartley":
        return naive_hartley(n)
    if name == "dft":
        return scipy.fft.fft(np.eye(n), axis=0, norm="ortho")
    if name == "hadamard":
        return scipy.linalg.hadamard(n) / np.sqrt(n)
    if name == "dct":
        return scipy.fft.dct(np.eye(n), axis=0) / np.sqrt(n)
    if name == "dst":
        return scipy.fft.dst(np.eye(n), axis=0) / np.sqrt(n)
    raise ValueError(name)


def shuffle_both(a: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = a.shape[0]
    return a[rng.permutation(n)][:, rng.permutation(n)]


def solve(a: np.ndarray) -> tuple[str, float, dict]:
    steps, meta = solve_auto(a)
    factors = Factors(a.shape[0], steps)
    dense = factors.apply(np.eye(a.shape[0])).T
    return factors.structure, float(np.linalg.norm(dense - a) / np.linalg.norm(a)), meta


def letters(structure: str) -> str:
    return structure.replace("P", "")


# The naive Hartley's own construction error (cos of angles up to 2 pi N) grows like 1e-16 N.
def exact_bound(name: str, n: int) -> float:
    return max(1e-13, 5e-16 * n) if name == "hartley" else 1e-13


@pytest.mark.parametrize("n", [16, 64, 256])
@pytest.mark.parametrize("name", ["hartley", "dft", "hadamard", "dct", "dst"])
def test_both_sides_shuffled_is_exact(name: str, n: int) -> None:
    a = build(name, n)
    clean_structure, _, _ = solve(a)
    structure, rel, _ = solve(shuffle_both(a, seed=n + 7))
    assert letters(structure) == letters(clean_structure)
    assert rel <= exact_bound(name, n)


@pytest.mark.parametrize("n", [16, 64, 256])
def test_hartley_both_shuffled_in_float32_is_exact_to_its_precision(n: int) -> None:
    a = shuffle_both(naive_hartley(n), seed=3 * n)
    stored = a.astype(np.float32).astype(np.float64)
    eps = float(np.linalg.norm(stored - a) / np.linalg.norm(a))
    structure, rel, meta = solve(stored)
    assert letters(structure) == "Q" and meta["auto_route"] == "real_rank2"
    assert rel <= 10 * eps + 1e-14


@pytest.mark.parametrize("eps", [1e-12, 1e-9, 1e-6])
def test_hartley_both_shuffled_with_noise_is_within_ten_eps(eps: float) -> None:
    n = 64
    rng = np.random.default_rng(11)
    a = shuffle_both(naive_hartley(n), seed=5)
    noise = rng.standard_normal((n, n))
    noisy = a + eps * np.linalg.norm(a) * noise / np.linalg.norm(noise)
    structure, rel, _ = solve(noisy)
    assert letters(structure) == "Q"
    assert rel <= 10 * eps + 1e-14


def test_branch_rows_give_the_one_sided_discovery_a_valid_row_order() -> None:
    """The first candidate row order of a both-shuffled Hartley matrix already admits a
    consistent column order (no search on the columns' side)."""
    n = 128
    a = shuffle_both(naive_hartley(n), seed=1)
    rows = branch_row_orders(a)[0]
    assert np.array_equal(np.sort(rows), np.arange(n))
    assert discover_plane_permutation(a[rows], strict=True).consistent


def test_a_matrix_without_a_rank_one_top_stage_gives_no_candidate() -> None:
    a = np.random.default_rng(0).standard_normal((64, 64))
    assert list(branch_row_orders(a)) == []
    dct = shuffle_both(build("dct", 64), seed=2)  # rank 2 on top: the two-sided rank-2 search's case
    assert list(branch_row_orders(dct)) == []


def random_butterfly(n: int, rng: np.random.Generator) -> np.ndarray:
    """A dense complex butterfly built stage by stage (stride 1 first), as in the notes' section 1."""
    mat = np.eye(n, dtype=np.complex128)
    levels = n.bit_length() - 1
    for lev in range(levels):
        s = 1 << lev
        stage = np.zeros((n, n), dtype=np.complex128)
        for i in range(n // 2):
            low = i % s
            pos = 2 * (i - low) + low
            blk = rng.standard_normal((2, 2)) + 1j * rng.standard_normal((2, 2))
            stage[np.ix_([pos, pos + s], [pos, pos + s])] = blk
        mat = stage @ mat
    return mat


@pytest.mark.parametrize("n", [16, 64])
def test_random_butterfly_shuffled_on_both_sides_is_exact(n: int) -> None:
    rng = np.random.default_rng(n)
    a = shuffle_both(random_butterfly(n, rng), seed=n)
    structure, rel, meta = solve(a)
    assert letters(structure) == "B" and meta["auto_route"] == "bp"
    assert rel <= 1e-12


def test_an_ambiguous_strongest_row_does_not_pick_the_partner() -> None:
    """Row 0 of a Hartley matrix (all ones; made the strongest by a row scaling, which keeps the
    structure) lies on two lines with rows N/4, N/2 and 3N/4, but only N/2 is its partner in every
    group: the reference must be a row whose partner stands out."""
    n = 16
    a = naive_hartley(n)
    a[0] *= 1.5
    order = row_pairing._pair_rows(a[None])
    tops, bottoms = order[: n // 2], order[n // 2 :]
    assert sorted(zip(tops.tolist(), bottoms.tolist())) == [(k, k + n // 2) for k in range(n // 2)]


@pytest.mark.parametrize("name", ["dct", "dst"])
def test_dct_and_dst_both_shuffled_are_read_through_their_transpose(name: str) -> None:
    """A DCT-II has no rank-one top stage but its transpose (a DCT-III) has one at every level:
    the rank-2 route's branch reads the rows of T^T, and the chain is transposed back."""
    from bfly_cli.solvers.closed_form.rank2_route import _solve_by_branch

    a = shuffle_both(build(name, 64), seed=9)
    assert branch_row_orders(a) == []
    assert branch_row_orders(np.ascontiguousarray(a.T)) != []
    steps, meta = _solve_by_branch(a)
    dense = Factors(64, steps).apply(np.eye(64)).T
    assert meta["rank2_rows"] == "permuted"
    assert np.linalg.norm(dense - a) <= 1e-13 * np.linalg.norm(a)


@pytest.mark.parametrize("name", ["dft", "hadamard", "dct", "dst"])
def test_both_shuffled_in_float32_is_exact_to_its_precision(name: str) -> None:
    a = shuffle_both(build(name, 128), seed=4)
    stored = a.astype(np.complex64 if np.iscomplexobj(a) else np.float32).astype(a.dtype)
    eps = float(np.linalg.norm(stored - a) / np.linalg.norm(a))
    structure, rel, _ = solve(stored)
    assert letters(structure) == letters(solve(build(name, 128))[0])
    assert rel <= 10 * eps + 1e-14


@pytest.mark.parametrize("name", ["dft", "hadamard"])
def test_butterflies_both_shuffled_with_noise_are_within_ten_eps(name: str) -> None:
    n, eps = 128, 1e-9
    rng = np.random.default_rng(3)
    a = shuffle_both(build(name, n), seed=8)
    noise = rng.standard_normal((n, n)) + (1j * rng.standard_normal((n, n)) if np.iscomplexobj(a) else 0)
    structure, rel, _ = solve(a + eps * np.linalg.norm(a) * noise / np.linalg.norm(noise))
    assert letters(structure) == "B"
    assert rel <= 10 * eps + 1e-14


def test_two_lines_that_split_the_columns_unevenly_are_no_partner() -> None:
    """A B.P's partner rows lie on two lines that split the columns in halves; a row equal to the
    reference on 3/4 of the columns and opposite on 1/4 is on two lines too, but no partner."""
    rng = np.random.default_rng(0)
    m = 64
    ref = rng.standard_normal(m)
    balanced = np.where(np.arange(m) % 2 == 0, 1.0, -1.0) * ref
    uneven = np.where(np.arange(m) % 4 == 0, -1.0, 1.0) * ref
    good, halves = row_pairing._split_by_lines(ref, balanced, 1, m)
    bad, _ = row_pairing._split_by_lines(ref, uneven, 1, m)
    assert good <= 1e-20 and halves.sum() == m // 2
    assert np.array_equal(halves[0, 0::2], np.full(m // 2, halves[0, 0]))
    assert bad > row_pairing._LINES_OFF


def test_the_sampled_first_split_screen_rejects_only_what_the_full_test_rejects() -> None:
    """B.P's screen on 64 row pairs: a shuffled DFT is rejected at the first split, a DFT at noise
    1e-3 (the largest noise the route must take) and a sparse B.P (the identity, whose columns
    vanish at most sampled pairs) are not."""
    from bfly_cli.solvers.closed_form import bp_route

    n = 512
    dft = build("dft", n)
    with pytest.raises(bp_route.NotBP) as caught:
        bp_route._screen_first_split(shuffle_both(dft, seed=1))
    assert caught.value.split_size == n
    rng = np.random.default_rng(5)
    noise = rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))
    bp_route._screen_first_split(dft + 1e-3 * np.linalg.norm(dft) * noise / np.linalg.norm(noise))
    bp_route._screen_first_split(np.eye(n))
    bp_route._screen_first_split(dft.T)  # a transposed view (the DFT is symmetric), read without a copy
