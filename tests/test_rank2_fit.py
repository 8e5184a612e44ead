"""bfly_cli/solvers/gradient/rank2_fit.py: the real rank-2 model from random stages, for a known order."""

from __future__ import annotations

import numpy as np

from bfly_cli import transforms
from bfly_cli.factors import Factors
from bfly_cli.solvers.closed_form.rank2_order import discover_plane_permutation
from bfly_cli.solvers.gradient.rank2_fit import fit_rank2

from conftest import gradient_restart


def test_fits_dct_exactly_in_a_rank2_order_and_is_deterministic():
    matrix = transforms.build("dct", 8)
    perm = discover_plane_permutation(matrix).perm
    fit = fit_rank2(gradient_restart(matrix, "BPP", seed=3), perm)
    assert [s.kind for s in fit.steps] == ["permutation", "rank2"] and 1 <= fit.starts <= 2
    dense = Factors(8, fit.steps).to_dense()
    assert np.linalg.norm(dense - matrix) <= 1e-10 * np.linalg.norm(matrix)
    assert fit.loss <= 1e-20
    again = fit_rank2(gradient_restart(matrix, "BPP", seed=3), perm)
    assert np.array_equal(again.steps[1].data, fit.steps[1].data)

