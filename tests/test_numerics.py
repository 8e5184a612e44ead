"""bfly_cli/solvers/numerics.py: tail energies, probe error, casting a result to the caller's precision."""

from __future__ import annotations

import numpy as np
import pytest

from bfly_cli import transforms
from bfly_cli.factors import Factors, Step
from bfly_cli.solvers.numerics import (
    cast_steps,
    finish_steps,
    probe_error,
    sketched_tail_energy,
    split_level_blocks,
    tail_energy,
)


def test_split_level_blocks_are_the_rows_and_column_chunks_of_the_split():
    n, level = 16, 2
    m = np.arange(n * n, dtype=float).reshape(n, n)
    blocks = split_level_blocks(m, level)
    assert blocks.shape == (n, n >> level, 1 << level)
    for low, chunk in ((3, 1), (0, 2), (2, 3)):
        rows = [r for r in range(n) if r % (1 << level) == low]
        cols = list(range(chunk << level, (chunk + 1) << level))
        assert np.array_equal(blocks[(chunk << level) + low], m[np.ix_(rows, cols)])


@pytest.mark.parametrize("rank", [1, 2])
def test_sketched_tail_is_exact_for_low_rank_blocks_and_an_upper_bound_otherwise(rank):
    ordered = transforms.build("dct", 32)[:, np.random.default_rng(0).permutation(32)]
    for level in range(rank, 4):  # level 1 blocks are 16 x 2: always rank <= 2
        exact = tail_energy(ordered, level, rank)
        assert exact > 1e-3  # a shuffled DCT has no low-rank split
        assert exact - 1e-9 <= sketched_tail_energy(ordered, level, rank) <= 1.5 * exact
    bit_reversed = transforms.build("dft", 32)[:, [int(f"{k:05b}"[::-1], 2) for k in range(32)]]
    assert max(sketched_tail_energy(bit_reversed, lev, 1) for lev in range(1, 4)) <= 1e-24  # a butterfly order


def test_probe_error_of_exact_and_wrong_factors():
    matrix = transforms.build("dft", 16)
    exact = Factors(16, [Step("permutation", np.arange(16)), Step("diagonal", np.ones(16))])
    assert probe_error(exact.apply, np.eye(16), 4, 0) <= 1e-15
    err = probe_error(exact.apply, matrix, 8, 0)
    rel = np.linalg.norm(np.eye(16) - matrix) / np.linalg.norm(matrix)
    assert 0.5 * rel <= err <= 2 * rel
    assert probe_error(exact.apply, np.zeros((16, 16)), 4, 0) > 0  # zero target: the absolute difference


def test_cast_steps_keeps_double_and_narrows_single():
    steps = [Step("permutation", np.arange(4)), Step("butterfly", np.ones((2, 2, 2, 2), complex)),
             Step("diagonal", np.ones(4)), Step("rank2", np.ones((2, 2, 2, 2, 2, 2)))]
    assert all(a is b for a, b in zip(cast_steps(steps, np.float64), steps))
    single = cast_steps(steps, np.float32)
    assert single[0] is steps[0] and single[3] is steps[3]  # permutations and rank2 stages untouched
    assert (single[1].data.dtype, single[2].data.dtype) == (np.complex64, np.float32)


def test_finish_steps_appends_real_for_a_real_target_only():
    steps = [Step("permutation", np.arange(4)), Step("butterfly", np.ones((2, 2, 2, 2), complex))]
    real = finish_steps(steps, np.eye(4, dtype=np.float32))
    assert [s.kind for s in real] == ["permutation", "butterfly", "real"] and real[1].data.dtype == np.complex64
    cplx = finish_steps(steps, np.eye(4, dtype=np.complex128))
    assert [s.kind for s in cplx] == ["permutation", "butterfly"] and cplx[1].data.dtype == np.complex128
