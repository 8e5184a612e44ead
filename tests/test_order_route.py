"""bfly_cli/solvers/gradient/order_route.py: BP/BPP repair, the twiddle model per order, twiddle fits."""

from __future__ import annotations

import numpy as np
import pytest

from bfly_cli import transforms
from bfly_cli.factors import Step
from bfly_cli.solvers.gradient.choice_repair import EXACT, score
from bfly_cli.solvers.gradient.options import GradientOptions
from bfly_cli.solvers.gradient.order_route import fit_orders, merged_order, random_twiddles, real_route, repair_order
from bfly_cli.torch_butterfly import permutation_from_choices

from conftest import gradient_restart


@pytest.mark.parametrize("real_model, n, rank, score_, expected", [
    ("auto", 8, 1, 0.0, "complex"),  # rank-1 orders: the chain's own model
    ("auto", 8, 2, 0.5, "complex"),  # inexact orders too
    ("auto", 8, 2, 0.0, "both"),  # small N: complex first, rank 2 if that fails
    ("auto", 32, 2, 0.0, "rank2"),  # from rank2_from on: rank 2 straight away
    ("rank2", 8, 2, 0.0, "rank2"),
    ("complex", 64, 2, 0.0, "complex"),
])
def test_real_route_table(real_model, n, rank, score_, expected):
    assert real_route(GradientOptions(real_model=real_model), n, rank, score_) == expected


def test_repair_counts_the_choices_it_changed():
    """A wrong rounding of DFT 16: the repair ends exact and ``flips`` is the number of choices
    that differ from the rounding (and is not zero)."""
    matrix = transforms.build("dft", 16)
    run = gradient_restart(matrix)
    rounded = np.array([[0, 0, 1], [1, 1, 0], [0, 0, 0]], dtype=bool)  # bit reversal, two choices off
    assert score(matrix, permutation_from_choices(16, rounded), 1) > 1e-3
    run.model.hard_choices = lambda: [rounded.copy()]
    repair = repair_order(run)
    assert repair.score <= EXACT and repair.rank == 1
    assert repair.flips == int(np.sum(repair.choices[0] != rounded)) > 0


def test_a_real_target_without_a_butterfly_order_is_scored_at_rank_two():
    run = gradient_restart(transforms.build("dct", 8), "BPP")
    repair = repair_order(run)
    assert repair.rank == 2 and repair.score <= EXACT


def test_merged_order_applies_the_first_permutation_first():
    run = gradient_restart(np.eye(8), "BPP")
    choices = [np.random.default_rng(k).random((2, 3)) < 0.5 for k in (0, 1)]
    pa, pb = (permutation_from_choices(8, c) for c in choices)
    assert np.array_equal(merged_order(run.model, choices), pa[pb])


def test_random_twiddles_redraw_butterflies_only_and_keep_them_real_on_request():
    steps = [Step("permutation", np.arange(4)), Step("butterfly", np.zeros((2, 2, 2, 2), complex)), Step("real")]
    out = random_twiddles(steps, seed=1, attempt=2, real=True)
    assert out[0] is steps[0] and out[2] is steps[2]
    assert np.iscomplexobj(out[1].data) and not np.any(out[1].data.imag) and np.any(out[1].data.real)
    again = random_twiddles(steps, seed=1, attempt=2, real=True)
    assert np.array_equal(out[1].data, again[1].data)  # seeded
    assert not np.array_equal(out[1].data, random_twiddles(steps, seed=1, attempt=3, real=True)[1].data)


def test_fit_orders_fits_the_repaired_order_of_dft():
    run = gradient_restart(transforms.build("dft", 8), fit_iters=100)
    found = fit_orders(run)
    assert found.loss <= 1e-10 and found.score <= EXACT
    assert found.orders == 1 and found.fit_tries >= 1 and not run.failed
