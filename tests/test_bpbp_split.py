"""bfly_cli/solvers/gradient/bpbp_split.py: the outside-in fit of two butterflies around bit reversals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bfly_cli import transforms
from bfly_cli.factors import Factors
from bfly_cli.solvers.gradient.bpbp_split import fit_mirror, pair_form_fit


def _rel(steps, matrix) -> float:
    dense = Factors(matrix.shape[0], steps).to_dense()
    return float(np.linalg.norm(dense - matrix) / np.linalg.norm(matrix))


def test_outside_in_fit_is_exact_for_a_circulant_and_refuses_a_non_bpbp():
    n = 16
    conv = transforms.build("convolution", n, seed=3)
    steps, worst = fit_mirror(torch.as_tensor(conv).to(torch.complex128), np.arange(n), seed=0)
    assert [s.kind for s in steps] == ["permutation", "butterfly", "permutation", "butterfly"]
    assert _rel(steps, conv) <= 1e-12 and worst <= 1e-12
    assert fit_mirror(torch.as_tensor(transforms.build("legendre", 8)).to(torch.complex128), np.arange(8), 0) is None


@pytest.mark.slow
def test_outside_in_fit_recovers_a_circulant_in_a_shuffled_order():
    """Columns shuffled by a known order: the fit in that order is exact, and the returned first
    permutation undoes the shuffle (the solver never sees how the target was made)."""
    n, rng = 16, np.random.default_rng(4)
    order = rng.permutation(n)
    shuffled = np.empty((n, n))
    shuffled[:, order] = transforms.build("convolution", n, seed=5)  # shuffled[:, order] is the circulant
    steps, _ = fit_mirror(torch.as_tensor(shuffled), order, seed=1)
    assert _rel(steps, shuffled) <= 1e-10


def test_pair_form_fit_finds_the_subspaces_of_a_circulant_split():
    """The returned (a, b) satisfy the pair-form equations: lower(a) = diag(b) upper(a)."""
    m = torch.as_tensor(transforms.build("convolution", 8, seed=2)).to(torch.complex128)
    b0 = torch.complex(*torch.randn(2, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64))
    a, b, resid = pair_form_fit(m, b0)
    top, bottom = m[:4].numpy(), m[4:].numpy()
    upper = top[:, :4] + top[:, 4:] * a[None, :]
    lower = bottom[:, :4] + bottom[:, 4:] * a[None, :]
    assert resid <= 1e-12
    assert np.linalg.norm(lower - b[:, None] * upper) <= 1e-10 * np.linalg.norm(m.numpy())
