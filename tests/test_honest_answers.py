"""Answers that looked right and were not (#13 items 4-7): non-finite outputs, extreme magnitudes,
complex input on real-output factors, and metadata claims that verify must recompute."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import scipy.fft
from typer.testing import CliRunner

from bfly_cli import kernel
from bfly_cli.cli import app
from bfly_cli.factors import Factors, Step

N = 16


def _invoke(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def _dense_butterfly(twiddle: np.ndarray) -> np.ndarray:
    """The butterfly's matrix from explicit 2x2 blocks, stage by stage (the layout of the file
    format: stage ``l`` has stride ``2**l``, pair ``i`` sits at ``2*(i - i % s) + i % s``)."""
    n = 2 * twiddle.shape[1]
    out = np.eye(n, dtype=twiddle.dtype)
    for lev in range(twiddle.shape[0]):
        s = 1 << lev
        stage = np.zeros((n, n), twiddle.dtype)
        for i in range(n // 2):
            pos = 2 * (i - i % s) + i % s
            stage[np.ix_([pos, pos + s], [pos, pos + s])] = twiddle[lev, i]
        out = stage @ out
    return out


def _real_linear_factors(n: int, seed: int) -> tuple[Factors, np.ndarray]:
    """``R B P`` with complex twiddles, and its dense matrix ``Re(B P)`` built by numpy."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    levels = n.bit_length() - 1
    twiddle = rng.standard_normal((levels, n // 2, 2, 2)) + 1j * rng.standard_normal((levels, n // 2, 2, 2))
    factors = Factors(n, [Step("permutation", perm), Step("butterfly", twiddle), Step("real")])
    permutation = np.eye(n)[perm]  # (P x)[i] = x[perm[i]]
    return factors, (_dense_butterfly(twiddle) @ permutation).real.copy()


# ---- item 6: complex input on real-output factors -------------------------------------------------


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_complex_input_on_real_output_factors_is_the_real_matrix_times_x(dtype):
    factors, dense = _real_linear_factors(N, 1)
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((3, N)) + 1j * rng.standard_normal((3, N))).astype(dtype)
    expected = x.astype(np.complex128) @ dense.T
    tol = 1e-12 if dtype == np.complex128 else 1e-5
    plan = kernel.Plan(factors, dtype)
    assert plan.out_dtype == np.dtype(dtype)
    for y in (factors.apply(x), kernel.apply(factors, x), plan.apply(x)):
        assert y.dtype.kind == "c"
        assert np.linalg.norm(y - expected) <= tol * np.linalg.norm(expected)


def test_apply_command_keeps_the_imaginary_part(tmp_path):
    from bfly_cli.h5format import save

    factors, dense = _real_linear_factors(N, 3)
    factors.meta = {"transform": "matrix", "n": N, "solver": "test", "seconds": 0.0, "seed": 0,
                    "bfly_version": "test", "created": "now", "command": "test",
                    "rmse": 0.0, "rel_error": 0.0, "max_abs_error": 0.0}
    save(factors, tmp_path / "f.h5")
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, N)) + 1j * rng.standard_normal((2, N))
    np.save(tmp_path / "x.npy", x)
    result = _invoke("apply", tmp_path / "f.h5", tmp_path / "x.npy", "-o", tmp_path / "y.npy")
    assert result.exit_code == 0, result.output
    y = np.load(tmp_path / "y.npy")
    assert np.iscomplexobj(y)
    assert np.allclose(y, x @ dense.T, rtol=0, atol=1e-12 * np.abs(x @ dense.T).max())
