"""Learning's working memory: block-wise measures, gathered solver blocks, declared route memory.

At N = 16384 one complex128 copy of the target is 4 GiB, so every N x N temporary counts. These
tests check that the block-wise code paths give the whole-matrix answers (forced into many small
blocks by shrinking ``BLOCK_BYTES``), that learning's peak stays at a few copies of the target
(tracemalloc: numpy reports its allocations to it, so the figure is a count, not a timing), and
that a solver or route whose declared working memory does not fit is refused with the figures
before it runs. Targets come from scipy.fft and numpy, not from ``transforms/``.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import scipy.fft

import bfly_cli
from bfly_cli import metrics, sizes
from bfly_cli.errors import BflyError
from bfly_cli.solvers import auto, registry
from bfly_cli.solvers.closed_form import bp_route
from bfly_cli.solvers.closed_form.hierarchical import factor_butterfly, ordered_blocks
from conftest import random_butterfly


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of 1 KiB: a 64 x 64 complex matrix is walked in 16 column or row blocks."""
    monkeypatch.setattr(metrics, "BLOCK_BYTES", 1024)


def _whole_matrix_report(approx: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """The three measures straight from their definitions (another road than ``metrics``)."""
    diff = approx.astype(complex) - target
    scalars = np.sqrt(2) * target.shape[0] if np.iscomplexobj(target) else target.shape[0]
    return {"rmse": np.linalg.norm(diff) / scalars, "rel_error": np.linalg.norm(diff) / np.linalg.norm(target),
            "max_abs_error": np.max(np.abs(diff))}


@pytest.mark.parametrize("complex_", [True, False])
def test_block_wise_errors_match_the_definitions(small_blocks, complex_: bool) -> None:
    rng = np.random.default_rng(1)
    target = rng.standard_normal((64, 64)) + (1j * rng.standard_normal((64, 64)) if complex_ else 0)
    approx = target + 1e-9 * rng.standard_normal((64, 64))
    got, want = metrics.error_report(approx, target), _whole_matrix_report(approx, target)
    assert len(metrics.column_blocks(approx)) > 4  # really block-wise
    for key in want:
        assert got[key] == pytest.approx(want[key], rel=1e-12)


def test_blocks_on_scales_far_apart_add_up_without_overflow(small_blocks) -> None:
    # Half the columns at 1e-200, half at 1e200: no one power of two holds both sums of squares.
    rng = np.random.default_rng(2)
    target = rng.standard_normal((64, 64))
    target[:, :32] *= 1e-200
    target[:, 32:] *= 1e200
    report = metrics.error_report(target * (1 + 1e-9), target)
    assert report["rel_error"] == pytest.approx(1e-9, rel=1e-6)
    assert report["max_abs_error"] == pytest.approx(1e-9 * np.max(np.abs(target)), rel=1e-6)
    assert np.isfinite(report["rmse"]) and report["rmse"] > 0


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_non_finite_entry_in_any_block_gives_non_finite_measures(small_blocks, bad: float) -> None:
    target = np.eye(64)
    approx = target.copy()
    approx[5, 60] = bad  # in the last column block
    report = metrics.error_report(approx, target)
    assert not any(np.isfinite(v) for v in report.values())


def test_input_precision_reads_every_row_block(small_blocks) -> None:
    stored = scipy.fft.dct(np.eye(64), norm="ortho", axis=0).astype(np.float32).astype(np.float64)
    assert metrics.input_precision(stored) == "float32"
    stored[63, 0] += 1e-12  # one float64-only value in the last row block
    assert metrics.input_precision(stored) == "float64"


def test_dense_blocks_are_the_columns_of_to_dense() -> None:
    factors = bfly_cli.factorize(scipy.fft.fft(np.eye(64), norm="ortho"))
    dense = factors.to_dense()
    covered = np.zeros(64, bool)
    for cols, block in factors.dense_blocks(chunk=24):
        np.testing.assert_allclose(block, dense[:, cols], atol=1e-14)
        covered[cols] = True
    assert covered.all()


@pytest.mark.parametrize("n", [2, 8, 64, 256])
def test_ordered_blocks_read_the_permuted_matrix_in_split_layout(n: int) -> None:
    rng = np.random.default_rng(n)
    matrix = rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))
    rows, cols = rng.permutation(n), rng.permutation(n)
    low = (n.bit_length() - 1) // 2
    hi, lo = n >> low, 1 << low
    want = matrix[np.ix_(rows, cols)].reshape(hi, lo, hi, lo).transpose(2, 1, 0, 3)  # (a, b, c, e)
    got = ordered_blocks(matrix, rows, cols)
    assert got.flags.c_contiguous and np.array_equal(got[0], want)
    twiddle = factor_butterfly(matrix, rows=rows, cols=cols)
    assert np.array_equal(twiddle, factor_butterfly(matrix[np.ix_(rows, cols)]))


def test_the_sliced_certificate_accepts_a_butterfly_and_rejects_a_shuffle(small_blocks) -> None:
    rng = np.random.default_rng(3)
    b = random_butterfly(128, rng)
    cols = rng.permutation(128)
    bp_route._certify_rank1(b[:, np.argsort(cols)], cols=cols)  # the order that undoes the shuffle
    with pytest.raises(bfly_cli.solvers.RouteUnavailable, match="not rank one"):
        bp_route._certify_rank1(b, cols=cols)


def _peak_copies(matrix: np.ndarray) -> float:
    """Peak numpy memory of ``factorize(matrix)`` beside the matrix, in copies of it."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        bfly_cli.factorize(matrix)
        return (tracemalloc.get_traced_memory()[1] - base) / matrix.nbytes
    finally:
        tracemalloc.stop()


def test_learning_a_dft_holds_a_few_copies_of_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # N = 2048 with 1 MiB blocks, so the blocks are small against the 64 MiB matrix as at N = 16384.
    # Before the block-wise measures and the gathered blocks the peak was about 5 copies beside the
    # matrix (the dense reconstruction, its difference, the scaled copies); now the scaled working
    # copy and the B.P route's blocks (about 2.3).
    monkeypatch.setattr(metrics, "BLOCK_BYTES", 1 << 20)
    dft = scipy.fft.fft(np.eye(2048), norm="ortho")
    assert _peak_copies(dft) < 3.0


def test_a_route_that_does_not_fit_is_skipped_with_the_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    dft = scipy.fft.fft(np.eye(64), norm="ortho")
    room = registry.route("bp").memory.bytes_for(dft.nbytes, 64)  # B.P fits, nothing bigger does
    monkeypatch.setattr(sizes, "available_bytes", lambda: room)
    steps, meta = auto.solve_auto(dft)
    assert meta["auto_route"] == "bp"
    rng = np.random.default_rng(4)
    with pytest.raises(BflyError, match=r"approximate: needs about .* GiB of working memory .* available"):
        auto.solve_auto(rng.standard_normal((64, 64)) + 1j * rng.standard_normal((64, 64)))


def test_a_named_solver_that_does_not_fit_is_refused_before_it_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sizes, "available_bytes", lambda: 1000)
    with pytest.raises(BflyError, match=r"solver 'hierarchical' needs about .* use a smaller N"):
        bfly_cli.factorize(scipy.fft.fft(np.eye(64)), solver="hierarchical")


def test_the_cli_says_so_in_one_line_with_exit_2(bfly, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    # Room for the size guard (target and working copy), not for the rank-2 solver's 7 copies.
    monkeypatch.setattr(sizes, "available_bytes", lambda: sizes.bytes_needed(16))
    matrix = tmp_path / "m.npy"
    np.save(matrix, scipy.fft.fft(np.eye(16)))
    result = bfly("learn", matrix, "--solver", "real_rank2", "-o", tmp_path / "out.h5")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "working memory" in lines[0] and "Traceback" not in result.stderr


def test_block_similarity_is_its_definition() -> None:
    from bfly_cli.solvers.closed_form.block_algebra import similarity

    rng = np.random.default_rng(5)
    blocks = rng.standard_normal((2, 2, 3, 4, 4)) + 1j * rng.standard_normal((2, 2, 3, 4, 4))
    left = rng.standard_normal((3, 4, 2, 2)) + 1j * rng.standard_normal((3, 4, 2, 2))
    right = rng.standard_normal((3, 4, 2, 2)) + 1j * rng.standard_normal((3, 4, 2, 2))
    want = np.einsum("kbij,jlkbc,kcln->inkbc", left, blocks, right)
    np.testing.assert_allclose(similarity(blocks, left, right), want, rtol=1e-13, atol=1e-13)


def test_link_invariants_in_row_slabs_match_the_whole_planes(monkeypatch: pytest.MonkeyPatch) -> None:
    # The two-butterfly route's per-block link weights and hop lengths, computed in slabs of a few
    # block rows (as at N >= 2048) against one slab: the same choices, lengths to rounding.
    from bfly_cli.solvers.closed_form import eigenbasis

    rng = np.random.default_rng(6)
    mats = rng.standard_normal((2, 128, 128)) + 1j * rng.standard_normal((2, 128, 128))
    mats[0, :, 5] = 0  # rank-one blocks in column pair 5: no link
    blocks = eigenbasis._pair_blocks(mats)
    whole = eigenbasis._links(blocks, 1e-3)
    monkeypatch.setattr(metrics, "BLOCK_BYTES", 4 * 2 * 64 * 16 * 3)  # slabs of 3 block rows
    assert len(eigenbasis._row_slabs(blocks)) > 10
    sliced = eigenbasis._links(blocks, 1e-3)
    assert np.array_equal(whole[0], sliced[0]) and np.array_equal(whole[2], sliced[2])
    np.testing.assert_allclose(sliced[1], whole[1], rtol=1e-14)
    assert np.array_equal(np.isinf(sliced[1]), np.isinf(whole[1])) and np.isinf(whole[1]).any()
