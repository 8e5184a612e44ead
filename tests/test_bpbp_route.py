"""bfly_cli/solvers/gradient/bpbp_route.py: BPBP by the outside-in fit, else the flip search."""

from __future__ import annotations

import pytest

from bfly_cli import transforms
from bfly_cli.learning import learn
from bfly_cli.solvers.gradient.bpbp_route import fit_bpbp

from conftest import gradient_restart


def test_a_circulant_is_fitted_from_the_outside_in():
    matrix = transforms.build("convolution", 8)
    found = fit_bpbp(gradient_restart(matrix, "BPBP"))
    assert found.fitted == "mirror" and found.loss <= 1e-20 and found.flips == 0
    assert 1 <= found.orders <= 2
    assert [s.kind for s in found.steps] == ["permutation", "butterfly", "permutation", "butterfly", "real"]


@pytest.mark.slow
def test_a_target_that_does_not_split_goes_to_the_search():
    """Legendre is no BPBP: the outside-in orders (one or two: the rounded one may be the
    matrix's own) fail, and the flip search makes the result."""
    matrix = transforms.build("legendre", 8)
    found = fit_bpbp(gradient_restart(matrix, "BPBP", search_rounds=0, search_iters=5))
    assert found.fitted is None and found.orders in (1, 2) and found.loss > 1e-4
    assert [s.kind for s in found.steps][-1] == "real"


@pytest.mark.slow
def test_learner_fits_convolution_bpbp_with_the_outside_in_fit():
    matrix = transforms.build("convolution", 32)
    factors = learn(matrix, solver="gradient", solver_options={"model": "BPBP", "restarts": 2, "seed": 0, "steps": 50})
    assert factors.meta["rel_error"] <= 1e-10
    assert factors.meta["solver_log"][0]["fitted"] == "mirror" and factors.meta["restarts_used"] == 1
    assert [s.kind for s in factors.steps] == ["permutation", "butterfly", "permutation", "butterfly", "real"]
