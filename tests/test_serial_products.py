"""serial_products: chunked products equal numpy's, for real, complex and strided operands."""

from __future__ import annotations

import numpy as np
import pytest

from bfly_cli.solvers.closed_form.serial_products import thin_product, wide_product


@pytest.mark.parametrize("complex_", [False, True])
@pytest.mark.parametrize("shape", [(300, 256), (1024, 1024), (8, 8)])
def test_thin_product_is_the_matrix_product(shape: tuple[int, int], complex_: bool) -> None:
    rng = np.random.default_rng(1)
    mat = rng.standard_normal(shape) + (1j * rng.standard_normal(shape) if complex_ else 0)
    probe = rng.standard_normal((shape[1], 2))
    view = np.stack([mat, mat], axis=1)[:, 0]  # rows strided, last axis contiguous
    expected = mat @ probe
    for operand in (mat, view):
        got = thin_product(operand, probe)
        assert got.dtype == expected.dtype
        assert np.allclose(got, expected, rtol=0, atol=1e-12 * np.abs(expected).max())


@pytest.mark.parametrize("complex_", [False, True])
@pytest.mark.parametrize("dims", [(1, 2, 512, 1024), (64, 2, 8, 16), (3, 2, 300, 700)])
def test_wide_product_is_the_batched_product(dims: tuple[int, int, int, int], complex_: bool) -> None:
    groups, rows, inner, cols = dims
    rng = np.random.default_rng(2)

    def draw(*shape: int) -> np.ndarray:
        x = rng.standard_normal(shape)
        return x + 1j * rng.standard_normal(shape) if complex_ else x

    left = np.swapaxes(draw(groups, inner, rows), 1, 2)  # transposed view, as bp_route passes it
    right = draw(groups, inner, cols)
    expected = left @ right
    got = wide_product(left, right)
    assert np.allclose(got, expected, rtol=0, atol=1e-12 * np.abs(expected).max())
