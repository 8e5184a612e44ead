"""``bfly apply``: results equal the reference multiply, pipes work, bad input exits 2 cleanly."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest

import bfly_cli
from bfly_cli import transforms

N = 64


@pytest.fixture(scope="module")
def dft_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("apply") / "dft-64.h5"
    bfly_cli.save(bfly_cli.factorize(transforms.build("dft", N)), path)
    return path


def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def test_round_trip_matches_reference(bfly, dft_file, tmp_path):
    x = np.random.default_rng(0).standard_normal((3, 5, N))
    np.save(tmp_path / "x.npy", x)
    result = bfly("apply", dft_file, tmp_path / "x.npy", "-o", tmp_path / "y.npy")
    assert result.exit_code == 0, result.stderr
    y = np.load(tmp_path / "y.npy")
    assert y.dtype == np.complex128 and y.shape == x.shape
    np.testing.assert_allclose(y, bfly_cli.load(dft_file).apply_reference(x), rtol=0, atol=1e-12)
    np.testing.assert_allclose(y, np.fft.fft(x) / np.sqrt(N), rtol=0, atol=1e-12)


def test_float32_stays_single_unless_dtype(bfly, dft_file, tmp_path):
    x = np.random.default_rng(1).standard_normal((4, N)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    assert bfly("apply", dft_file, tmp_path / "x.npy", "-o", tmp_path / "y.npy").exit_code == 0
    y = np.load(tmp_path / "y.npy")
    assert y.dtype == np.complex64
    np.testing.assert_allclose(y, np.fft.fft(x.astype(np.float64)) / np.sqrt(N), atol=1e-5)
    assert bfly("apply", dft_file, tmp_path / "x.npy", "-o", tmp_path / "z.npy", "--dtype", "complex128").exit_code == 0
    assert np.load(tmp_path / "z.npy").dtype == np.complex128


def test_stdin_to_stdout(bfly, dft_file):
    x = np.random.default_rng(2).standard_normal((2, N))
    result = bfly("apply", dft_file, "-", "-o", "-", input=npy_bytes(x))
    assert result.exit_code == 0, result.stderr
    y = np.load(io.BytesIO(result.stdout_bytes))
    np.testing.assert_allclose(y, np.fft.fft(x) / np.sqrt(N), atol=1e-12)


def test_shell_pipeline(dft_file, tmp_path):
    """Two applies chained through a real pipe: F F x is x reversed (index -k mod N)."""
    x = np.random.default_rng(3).standard_normal((2, N))
    cmd = [sys.executable, "-m", "bfly_cli.cli", "apply", str(dft_file), "-"]
    first = subprocess.run(cmd, input=npy_bytes(x), capture_output=True, check=True)
    second = subprocess.run(cmd + ["--threads", "2"], input=first.stdout, capture_output=True, check=True)
    y = np.load(io.BytesIO(second.stdout))
    np.testing.assert_allclose(y, x[:, (-np.arange(N)) % N], atol=1e-12)


def test_nan_propagates(bfly, dft_file, tmp_path):
    x = np.ones((2, N))
    x[1, 3] = np.nan
    np.save(tmp_path / "x.npy", x)
    assert bfly("apply", dft_file, tmp_path / "x.npy", "-o", tmp_path / "y.npy").exit_code == 0
    y = np.load(tmp_path / "y.npy")
    assert np.isnan(y[1]).all() and np.isfinite(y[0]).all()


@pytest.mark.parametrize("make,message", [
    (lambda p: np.save(p, np.zeros((2, N // 2))), "length 64"),
    (lambda p: np.save(p, np.zeros((2, N), np.int32)), "dtype int32"),
    (lambda p: np.save(p, np.array(1.5)), "a scalar"),
    (lambda p: np.save(p, np.array(["a"] * N)), "must hold numbers"),
    (lambda p: p.write_bytes(b"not an array"), "not a readable .npy"),
    (lambda p: np.save(p, np.array([{}], dtype=object)), "not a readable .npy"),
    (lambda p: None, "does not exist"),
])
def test_bad_input_exits_2(bfly, dft_file, tmp_path, make, message):
    make(tmp_path / "x.npy")
    result = bfly("apply", dft_file, tmp_path / "x.npy", "-o", tmp_path / "y.npy")
    assert result.exit_code == 2
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "y.npy").exists()


def test_existing_output_needs_force(bfly, dft_file, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((1, N)))
    (tmp_path / "y.npy").write_bytes(b"keep")
    result = bfly("apply", dft_file, tmp_path / "x.npy", "-o", tmp_path / "y.npy")
    assert result.exit_code == 2 and "--force" in result.stderr
    assert (tmp_path / "y.npy").read_bytes() == b"keep"
    assert bfly("apply", dft_file, tmp_path / "x.npy", "-o", tmp_path / "y.npy", "--force").exit_code == 0
    assert np.load(tmp_path / "y.npy").shape == (1, N)


def test_bad_options_and_factor_file(bfly, dft_file, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((1, N)))
    out = ["-o", str(tmp_path / "y.npy")]
    assert bfly("apply", dft_file, tmp_path / "x.npy", *out, "--dtype", "float16").exit_code == 2
    assert bfly("apply", dft_file, tmp_path / "x.npy", *out, "--threads", "0").exit_code == 2
    (tmp_path / "bad.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 40)
    result = bfly("apply", tmp_path / "bad.h5", tmp_path / "x.npy", *out)
    assert result.exit_code == 2 and "error:" in result.stderr
    assert bfly("apply", tmp_path / "none.h5", tmp_path / "x.npy", *out).exit_code == 2
