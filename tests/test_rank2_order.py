"""bfly_cli/solvers/closed_form/rank2_order.py: the discovered order makes every split block rank <= 2.

The oracle is independent of the code under test: the target is built with scipy, and the rank
of every block of every hierarchical split is read off full SVDs here.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft

from bfly_cli.solvers.closed_form.rank2_order import NoRankTwoOrder, discover_plane_permutation


def _worst_third_singular_value(ordered: np.ndarray) -> float:
    """Largest ``s_3 / s_1`` over every block of every split level (0 when no block has 3 of them).

    Split level ``l`` cuts rows by their low ``l`` bits and columns into aligned runs of ``2**l``.
    """
    n = ordered.shape[0]
    worst = 0.0
    for level in range(1, n.bit_length() - 1):
        rows, cols = n >> level, 1 << level
        for low in range(cols):
            for chunk in range(rows):
                block = ordered[low::cols, chunk * cols:(chunk + 1) * cols]
                sing = np.linalg.svd(block, compute_uv=False)
                if len(sing) > 2 and sing[0] > 0:
                    worst = max(worst, sing[2] / sing[0])
    return worst


def _dct2(n: int) -> np.ndarray:
    return scipy.fft.dct(np.eye(n), axis=0)  # column j: the DCT-II of e_j


@pytest.mark.parametrize("n", [16, 64])
@pytest.mark.parametrize("seed", [0, 1])
def test_discovered_order_makes_every_block_rank_two_for_a_shuffled_dct(n, seed):
    shuffled = _dct2(n)[:, np.random.default_rng(seed).permutation(n)]
    assert _worst_third_singular_value(shuffled) > 0.1  # the shuffle really breaks the structure
    found = discover_plane_permutation(shuffled)
    assert found.consistent
    assert sorted(found.perm) == list(range(n))
    assert _worst_third_singular_value(shuffled[:, found.perm]) <= 1e-12


def test_strict_discovery_refuses_a_matrix_with_no_rank_two_order():
    noise = np.random.default_rng(0).standard_normal((32, 32))
    assert not discover_plane_permutation(noise).consistent
    with pytest.raises(NoRankTwoOrder):
        discover_plane_permutation(noise, strict=True)
