"""bfly_cli/solvers/gradient/choice_repair.py: the closed-form score and search over hard permutations."""

from __future__ import annotations

import numpy as np
import pytest

from bfly_cli import transforms
from bfly_cli.factors import Factors, Step
from bfly_cli.solvers.closed_form.hierarchical import factor_butterfly
from bfly_cli.solvers.gradient.choice_repair import EXACT, level_scores, order_key, score, search_pair, search_single
from bfly_cli.torch_butterfly import bit_reversal, permutation_from_choices


def _perm(n: int, choices: np.ndarray) -> np.ndarray:
    return permutation_from_choices(n, choices)


def _exact_tails(ordered: np.ndarray, rank: int) -> list[float]:
    """Energy beyond ``rank`` of every split level's blocks, by full SVDs (independent of the module)."""
    n = ordered.shape[0]
    out = []
    for lev in range(1, n.bit_length() - 1):
        hi, lo = n >> lev, 1 << lev
        blocks = ordered.reshape(hi, lo, hi, lo).transpose(2, 1, 0, 3)
        out.append(float(np.sum(np.linalg.svd(blocks, compute_uv=False)[..., rank:] ** 2)))
    return out


def test_score_is_zero_exactly_for_a_butterfly_order():
    matrix = transforms.build("dft", 16)
    assert score(matrix, bit_reversal(16), rank=1) <= 1e-14
    assert score(matrix, np.arange(16), rank=1) > 1e-3
    assert score(matrix, np.random.default_rng(0).permutation(16), rank=1) > 1e-3


def test_split_tail_matches_svd_and_reversing_both_halves_is_a_gauge():
    matrix = transforms.build("dct", 16)
    base = np.random.default_rng(1).random((3, 3)) < 0.5
    flipped = base.copy()
    flipped[1, 1:] = ~flipped[1, 1:]
    exact = _exact_tails(matrix[:, _perm(16, base)], 2)
    assert np.allclose(exact, _exact_tails(matrix[:, _perm(16, flipped)], 2), atol=1e-12)
    sketched = level_scores(matrix, _perm(16, base), 2)[::-1] * np.sum(matrix**2)
    assert np.all(sketched >= np.array(exact) - 1e-12) and np.allclose(sketched, exact, rtol=0.2, atol=1e-12)


def _rel(steps: list[Step], matrix: np.ndarray) -> float:
    n = matrix.shape[0]
    return float(np.linalg.norm(Factors(n, steps).to_dense() - matrix) / np.linalg.norm(matrix))


@pytest.mark.parametrize("name, rank, seed", [("dft", 1, 2), ("hartley", 2, 4)])
def test_single_search_repairs_a_wrong_rounding(name, rank, seed):
    n = 32
    matrix = transforms.build(name, n)
    start = np.random.default_rng(seed).random((4, 3)) < 0.5
    assert score(matrix, _perm(n, start), rank) > 1e-3  # the start really is wrong
    found = search_single(matrix, start, rank)
    assert found.score <= EXACT
    assert max(_exact_tails(matrix[:, _perm(n, found.choices[0])], rank)) <= 1e-20 * n * n
    if rank == 1:  # oracle: the closed-form factorization of the repaired order is exact
        perm = _perm(n, found.choices[0])
        steps = [Step("permutation", perm), Step("butterfly", factor_butterfly(matrix[:, perm]))]
        assert _rel(steps, matrix) <= 1e-12


def test_single_search_keeps_a_right_rounding():
    right = np.array([[1, 0, 1], [1, 1, 0], [1, 0, 0]], dtype=bool)  # separate everywhere: bit reversal
    found = search_single(transforms.build("dft", 16), right, 1)
    assert found.evaluated == 1 and np.array_equal(found.choices[0], right)


def test_pair_search_finds_a_rank2_order_for_dct():
    matrix = transforms.build("dct", 16)
    rng = np.random.default_rng(3)
    found = search_pair(matrix, rng.random((3, 3)) < 0.5, rng.random((3, 3)) < 0.5, 2)
    merged = _perm(16, found.choices[0])[_perm(16, found.choices[1])]
    assert found.score <= EXACT and score(matrix, merged, 2) <= EXACT
    assert max(_exact_tails(matrix[:, merged], 2)) <= 1e-20 * 256


def test_excluded_orders_are_skipped():
    matrix = transforms.build("dft", 16)
    start = np.array([[1, 0, 0], [1, 0, 0], [1, 0, 0]], dtype=bool)
    first = search_single(matrix, start, 1)
    again = search_single(matrix, start, 1, exclude=frozenset({order_key(_perm(16, first.choices[0]))}))
    assert first.score <= EXACT
    assert order_key(_perm(16, again.choices[0])) != order_key(_perm(16, first.choices[0]))


def test_order_key_ignores_order_inside_and_of_chunks_only():
    n = 16
    perm = np.random.default_rng(4).permutation(n)
    inside = perm.reshape(-1, 2)[:, ::-1].reshape(-1)  # swap within every aligned pair
    halves = np.concatenate([perm[8:], perm[:8]])  # swap the two halves
    assert order_key(inside) == order_key(perm) == order_key(halves)
    moved = perm.copy()
    moved[[1, 2]] = moved[[2, 1]]  # one column into another pair
    assert order_key(moved) != order_key(perm)
