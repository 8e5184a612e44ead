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


# ---- helpers for the verify tests -----------------------------------------------------------------


def _dct(n: int = N) -> np.ndarray:
    """The orthonormal DCT-II built by scipy, not by bfly's transforms."""
    return scipy.fft.dct(np.eye(n), norm="ortho", axis=0)


def _learn_file(tmp_path, matrix: np.ndarray, name: str = "m", *options: str) -> tuple:
    """``bfly learn M.npy -o M.h5 --json``: the file and its JSON document."""
    np.save(tmp_path / f"{name}.npy", matrix)
    result = _invoke("learn", tmp_path / f"{name}.npy", "-o", tmp_path / f"{name}.h5", "--json", *options)
    assert result.exit_code == 0, result.output
    return tmp_path / f"{name}.h5", json.loads(result.stdout)


def _verify(path, *args: str):
    result = _invoke("verify", path, "--json", *args)
    return result, (json.loads(result.stdout) if result.stdout.strip() else None)


def _one_line_error(result, code: int) -> str:
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def _edit(path, **attrs) -> None:
    with h5py.File(path, "r+") as handle:
        for key, value in attrs.items():
            handle.attrs[key] = value


# ---- item 4: non-finite output fails verify ---------------------------------------------------------


def test_verify_fails_factors_whose_output_overflows(tmp_path):
    path, _ = _learn_file(tmp_path, _dct())
    with h5py.File(path, "r+") as handle:  # finite data, but every product of four stages overflows
        for key in handle["steps"]:
            group = handle["steps"][key]
            if group.attrs["kind"] != "permutation":
                group["data"][...] = group["data"][()] * 1e200
    result, doc = _verify(path)
    line = _one_line_error(result, 1)
    assert "NaN or Inf" in line and doc["passed"] is False
    assert doc["recomputed"]["rel_error"] is None  # NaN: JSON null


def test_nan_measures_never_pass_the_comparison():
    from bfly_cli.verification import compare

    recorded = {"rel_error": 0.5, "rmse": 0.1, "max_abs_error": 0.2}
    nan = {key: float("nan") for key in recorded}
    _, reasons = compare(recorded, nan, "float64", tol=1.0)
    assert len(reasons) == 4  # three measures and --tol


def test_learn_refuses_a_nan_tolerance():
    from bfly_cli.errors import BflyError
    from bfly_cli.learning import learn

    with pytest.raises(BflyError, match="non-negative tolerance"):
        learn(_dct(8), tol=float("nan"))


# ---- item 5: extreme magnitudes are learned and measured like the unit-scale matrix ---------------


@pytest.fixture(scope="module")
def unscaled(tmp_path_factory):
    """The DCT learned at its own scale: the reference every rescaled copy must match."""
    _, doc = _learn_file(tmp_path_factory.mktemp("unscaled"), _dct())
    assert doc["exact"] is True
    return doc


@pytest.mark.parametrize("scale", [1e-200, 1e160, 1e300, 2.0**-700, 2.0**900], ids=str)
def test_extreme_magnitudes_are_learned_exactly_and_verify(tmp_path, unscaled, scale):
    path, doc = _learn_file(tmp_path, _dct() * scale)
    assert doc["structure"] == unscaled["structure"] and doc["params"] == unscaled["params"]
    assert doc["exact"] is True and 0 < doc["rel_error"] <= 1e-12
    if np.log2(scale).is_integer():  # an exact rescaling: the very same answer, scaled
        assert doc["rel_error"] == unscaled["rel_error"]
        assert doc["max_abs_error"] == unscaled["max_abs_error"] * scale
    result, check = _verify(path)
    assert result.exit_code == 0, result.output
    assert check["passed"] and abs(check["recomputed"]["rel_error"] - doc["rel_error"]) <= 1e-12


def test_subnormal_matrix_keeps_what_survives(tmp_path, unscaled):
    """DCT * 2**-1070 rounds to multiples of 2**-1074 (a few bits each): that matrix, not zero, is
    what is learned, like its exact rescaling to unit size, and the factors reproduce it."""
    tiny = _dct() * 2.0**-1070
    assert np.any(tiny) and np.all(np.abs(tiny) < np.finfo(float).tiny)
    path, doc = _learn_file(tmp_path, tiny)
    _, rescaled = _learn_file(tmp_path, np.ldexp(tiny, 1070), "rescaled")
    assert doc["structure"] == rescaled["structure"] and doc["exact"] is True
    assert doc["rel_error"] <= 1e-12
    from bfly_cli.h5format import load

    dense = np.ldexp(load(path).to_dense(), 1070)
    assert np.linalg.norm(dense - np.ldexp(tiny, 1070)) <= 1e-12 * np.linalg.norm(np.ldexp(tiny, 1070))
    result, check = _verify(path)
    assert result.exit_code == 0 and check["passed"], result.output


def test_error_report_is_scale_invariant():
    from bfly_cli.metrics import error_report

    rng = np.random.default_rng(6)
    target = rng.standard_normal((8, 8))
    approx = target + 1e-3 * rng.standard_normal((8, 8))
    base = error_report(approx, target)
    for exponent in (-1000, -600, 600, 1000):
        scaled = error_report(np.ldexp(approx, exponent), np.ldexp(target, exponent))
        assert scaled["rel_error"] == base["rel_error"]
        assert scaled["max_abs_error"] == np.ldexp(base["max_abs_error"], exponent)
    tiny = np.ldexp(target, -1000)  # an all-zero answer to a tiny target is wrong, not exact
    assert error_report(np.zeros_like(tiny), tiny)["rel_error"] == 1.0


@pytest.mark.parametrize("bad", ["zeros", "nan"])
def test_learn_refuses_all_zero_and_non_finite_matrices(tmp_path, bad):
    from bfly_cli.errors import BflyError
    from bfly_cli.learning import learn

    matrix = np.zeros((8, 8))
    if bad == "nan":
        matrix[1, 2] = np.nan
    with pytest.raises(BflyError, match="all zeros" if bad == "zeros" else "NaN or Inf"):
        learn(matrix)
    np.save(tmp_path / "m.npy", matrix)
    result = _invoke("learn", tmp_path / "m.npy", "-o", tmp_path / "m.h5")
    _one_line_error(result, 2)
    assert not (tmp_path / "m.h5").exists()


def test_float32_factors_refuse_a_magnitude_float32_cannot_hold():
    from bfly_cli.errors import BflyError
    from bfly_cli.learning import learn

    with pytest.raises(BflyError, match="cannot be held by float32"):
        learn(_dct(8) * 1e-200, dtype="float32")


# ---- item 7: every claim verify can recompute is recomputed -------------------------------------------


@pytest.fixture(scope="module")
def approximate(tmp_path_factory):
    """A random Gaussian matrix through the B.P closed form: honest, approximate (it has no
    butterfly structure), and fast (the full auto search would run the slow approximation)."""
    folder = tmp_path_factory.mktemp("approximate")
    matrix = np.random.default_rng(7).standard_normal((N, N))
    path, doc = _learn_file(folder, matrix, "m", "--solver", "hierarchical")
    assert doc["exact"] is False and doc["exactness"] == "approximate"
    return path


def test_honest_file_passes_and_lists_what_was_checked(approximate):
    result, doc = _verify(approximate)
    assert result.exit_code == 0, result.output
    for key in ("rel_error", "n", "structure", "dtype", "params", "real_params", "dense_real_params",
                "input_precision", "exactness", "exact"):
        assert key in doc["checked"]


@pytest.mark.parametrize("claims, named", [
    ({"exact": True, "exactness": "exact"}, "exact"),
    ({"exact": True}, "exact is recorded as True"),
    ({"exactness": "near-exact"}, "exactness"),
    ({"params": 7}, "params"),
    ({"real_params": 9}, "real_params"),
    ({"dense_real_params": 2 * N * N}, "dense_real_params"),
    ({"dtype": "float32"}, "dtype"),
    ({"input_precision": "float32"}, "input_precision"),
    ({"noise_floor": 0.25}, "noise_floor"),
], ids=lambda v: v if isinstance(v, str) else "-".join(v))
def test_a_false_claim_fails_verify_naming_it(tmp_path, approximate, claims, named):
    import shutil

    path = shutil.copy(approximate, tmp_path / "edited.h5")
    _edit(path, **claims)
    result, doc = _verify(path)
    line = _one_line_error(result, 1)
    assert named in line and doc["passed"] is False


def test_exact_file_edited_to_approximate_fails(tmp_path):
    path, _ = _learn_file(tmp_path, _dct())
    _edit(path, exact=False, exactness="approximate")
    result, _ = _verify(path)
    assert "exactness is recorded as 'approximate'" in _one_line_error(result, 1)


@pytest.mark.parametrize("scale", [1e-200, 1e300], ids=str)
def test_analyze_gives_the_unscaled_verdict_at_extreme_magnitudes(tmp_path, scale):
    from bfly_cli.analysis import analyze

    base = analyze(_dct())
    scaled = analyze(_dct() * scale)
    assert scaled["route"] == base["route"] and scaled["verdict"] == base["verdict"]


@pytest.mark.parametrize("exponent", [-1000, -3, 5, 1000])
def test_fold_scale_multiplies_the_product_by_exactly_a_power_of_two(exponent):
    from bfly_cli.learning import fold_scale

    rng = np.random.default_rng(8)
    twiddle = rng.standard_normal((3, 4, 2, 2))
    twiddle[0, 0, 0, 0] = 5e-324  # a leftover subnormal entry: rounding it away is harmless
    steps = [Step("permutation", rng.permutation(8)), Step("butterfly", twiddle), Step("diagonal", rng.standard_normal(8))]
    folded = fold_scale(steps, exponent)
    assert np.array_equal(steps[1].data, twiddle)  # the input steps are not modified
    dense = _dense_butterfly(twiddle) @ np.eye(8)[steps[0].data]
    expected = steps[2].data[:, None] * dense
    got = np.ldexp(Factors(8, folded).to_dense(), -exponent)  # compared at unit scale: no overflow
    assert np.linalg.norm(got - expected) <= 1e-15 * np.linalg.norm(expected)
