"""The factors object: reference multiply, dense reconstruction, validation."""

from __future__ import annotations

import numpy as np
import pytest

from bfly_cli.errors import FormatError
from bfly_cli.factors import Factors, Step, butterfly_multiply


def _stage_matrix(tw_level: np.ndarray, n: int, s: int) -> np.ndarray:
    """Dense matrix of one stage built pair by pair from the documented convention."""
    m = np.zeros((n, n), dtype=tw_level.dtype)
    for i in range(n // 2):
        low = i % s
        pos = 2 * (i - low) + low
        (a, b), (c, d) = tw_level[i]
        m[pos, pos], m[pos, pos + s], m[pos + s, pos], m[pos + s, pos + s] = a, b, c, d
    return m


@pytest.mark.parametrize("n", [2, 4, 16, 64])
def test_butterfly_multiply_matches_pairwise_definition(n: int) -> None:
    rng = np.random.default_rng(n)
    levels = n.bit_length() - 1
    tw = rng.standard_normal((levels, n // 2, 2, 2)) + 1j * rng.standard_normal((levels, n // 2, 2, 2))
    dense = np.eye(n, dtype=complex)
    for lev in range(levels):
        dense = _stage_matrix(tw[lev], n, 1 << lev) @ dense
    x = rng.standard_normal((3, n))
    np.testing.assert_allclose(butterfly_multiply(tw, x), x @ dense.T, atol=1e-12)


def test_steps_apply_in_order_and_structure_reads_as_product() -> None:
    rng = np.random.default_rng(0)
    n = 8
    perm = rng.permutation(n)
    tw = rng.standard_normal((3, 4, 2, 2)) + 1j * rng.standard_normal((3, 4, 2, 2))
    d = rng.standard_normal(n)
    f = Factors(n, [Step("permutation", perm), Step("butterfly", tw), Step("diagonal", d), Step("real")])
    assert f.structure == "RDBP"
    b = butterfly_multiply(tw, np.eye(n)).T
    p = np.eye(n)[perm]
    expected = np.real(np.diag(d) @ b @ p)
    np.testing.assert_allclose(f.to_dense(), expected, atol=1e-13)
    assert f.n_params() == tw.size + d.size
    x = rng.standard_normal((5, n))
    np.testing.assert_allclose(f.apply_reference(x), x @ expected.T, atol=1e-12)


@pytest.mark.parametrize(
    "steps, message",
    [
        ([Step("permutation", np.array([0, 0, 1, 2]))], "not a permutation"),
        ([Step("butterfly", np.zeros((2, 2, 2)))], "shape"),
        ([Step("butterfly", np.full((2, 2, 2, 2), np.nan))], "NaN"),
        ([Step("diagonal", np.zeros(4, dtype=int))], "floating-point"),
        ([Step("twiddle", np.zeros(4))], "unknown kind"),
        ([Step("real", np.zeros(4))], "must not carry data"),
        ([], "at least one step"),
    ],
)
def test_validation_rejects_bad_steps(steps, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        Factors(4, steps)


def test_wrong_vector_length() -> None:
    f = Factors(4, [Step("diagonal", np.ones(4))])
    with pytest.raises(ValueError, match="expected 4"):
        f.apply_reference(np.ones(5))
