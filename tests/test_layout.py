"""bfly_cli.layout: the index bookkeeping every butterfly path shares (numpy only)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bfly_cli import layout
from bfly_cli.reference import butterfly_multiply


def _twiddles(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (n.bit_length() - 1, n // 2, 2, 2)
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)


def _decreasing_dense(tw: np.ndarray) -> np.ndarray:
    """The matrix of the stages of ``tw`` applied stride N/2 first, straight from the pair definition."""
    levels, half = tw.shape[:2]
    n = 2 * half
    m = np.eye(n, dtype=complex)
    for lev in reversed(range(levels)):
        stage = np.zeros((n, n), dtype=complex)
        s = 1 << lev
        for i, pos in enumerate(layout.pair_positions(n, lev)):
            stage[np.ix_([pos, pos + s], [pos, pos + s])] = tw[lev, i]
        m = stage @ m
    return m


@pytest.mark.parametrize("n", [2, 4, 8, 32])
def test_reverse_stages_conjugates_by_the_bit_reversal(n):
    """``B_dec = R B_inc R``: the increasing-stride twiddles reproduce the decreasing-stride product."""
    tw = _twiddles(n)
    rev = layout.bit_reversal(n)
    inc = butterfly_multiply(layout.reverse_stages(tw), np.eye(n)[:, rev])[:, rev].T
    np.testing.assert_allclose(inc, _decreasing_dense(tw), atol=1e-12)


@pytest.mark.parametrize("n", [4, 64])
def test_unreverse_is_the_inverse_and_tensors_work_too(n):
    tw = _twiddles(n, 1)
    assert np.array_equal(layout.unreverse_stages(layout.reverse_stages(tw)), tw)
    batch = np.stack([tw, 2 * tw])  # leading axes are carried along
    assert np.array_equal(layout.reverse_stages(batch)[1], layout.reverse_stages(2 * tw))
    tensor = layout.reverse_stages(torch.as_tensor(tw))
    assert isinstance(tensor, torch.Tensor) and np.array_equal(tensor.numpy(), layout.reverse_stages(tw))


def test_pair_index_inverts_pair_positions():
    for level in range(5):
        pos = layout.pair_positions(32, level)
        assert np.array_equal(layout.pair_index(level, pos), np.arange(16))


def test_bit_reversal_is_an_involution_and_log2_exact():
    for n in (2, 8, 1024):
        rev = layout.bit_reversal(n)
        assert np.array_equal(rev[rev], np.arange(n))
        assert layout.log2_exact(n) == n.bit_length() - 1
    assert [layout.log2_exact(v) for v in (0, 3, 12)] == [-1, -1, -1]


def test_all_separate_choices_give_the_bit_reversal():
    for n in (4, 16, 128):
        choices = np.zeros((n.bit_length() - 2, 3), dtype=bool)
        choices[:, 0] = True
        assert np.array_equal(layout.permutation_from_choices(n, choices), layout.bit_reversal(n))
