"""bfly_cli/solvers/gradient/flip_search.py: rounding, then single-choice flips scored by short fits."""

from __future__ import annotations

import numpy as np

from bfly_cli import transforms
from bfly_cli.factors import Step
from bfly_cli.solvers.gradient.flip_search import round_and_search, single_flips, with_permutations

from conftest import gradient_restart

_BIT_REVERSAL = np.array([[1, 0, 1], [1, 1, 0]], dtype=bool)  # DFT 8's order (separate everywhere)


def test_single_flips_are_every_one_choice_change_exactly_once():
    choices = [np.zeros((2, 3), dtype=bool), np.ones((1, 3), dtype=bool)]
    flips = single_flips(choices)
    assert len(flips) == 9
    diffs = [sum(int(np.sum(a != b)) for a, b in zip(f, choices)) for f in flips]
    assert diffs == [1] * 9
    assert len({b"".join(a.tobytes() for a in f) for f in flips}) == 9
    assert not choices[0].any() and choices[1].all()  # the input is not modified


def test_with_permutations_swaps_only_permutation_data():
    own = [Step("permutation", np.arange(4)), Step("butterfly", np.ones((2, 2, 2, 2))), Step("real")]
    src = [Step("permutation", np.array([3, 2, 1, 0])), Step("butterfly", np.zeros((2, 2, 2, 2))), Step("real")]
    out = with_permutations(own, src)
    assert np.array_equal(out[0].data, [3, 2, 1, 0]) and out[1] is own[1] and out[2] is own[2]


def test_rounding_only_when_search_is_off():
    run = gradient_restart(transforms.build("dft", 8), search=False, search_iters=5)
    found = round_and_search(run)
    assert found.flips == 0 and np.isnan(found.score) and found.fitted is None
    assert np.array_equal(found.steps[0].data, run.model.to_steps(run.model.hard_choices())[0].data)


def test_one_wrong_choice_is_flipped_back():
    """DFT 8 rounded to the bit reversal with its first "separate" choice wrong (no butterfly
    order: block-rank score 1.0): one flip makes it fit."""
    matrix = transforms.build("dft", 8)
    run = gradient_restart(matrix, search_iters=40, search_rounds=2)
    wrong = _BIT_REVERSAL.copy()
    wrong[0, 0] = not wrong[0, 0]
    run.model.hard_choices = lambda: [wrong.copy()]
    found = round_and_search(run)
    assert found.flips == 1 and found.loss <= 1e-10
