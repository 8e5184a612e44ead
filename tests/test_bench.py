"""bfly bench: document structure, agreement of every timed method, baselines, bad input.

Never asserts anything about speed: only that timings and ratios are positive numbers and that
every method computes the same product as the numpy reference.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg

from bfly_cli import transforms
from typer.testing import CliRunner

from bfly_cli import bench_run as bench
from bfly_cli.cli import app
from bfly_cli.h5format import load


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Small learned factor files (N = 16), learned once for the module."""
    folder, out = tmp_path_factory.mktemp("bench"), {}
    np.save(folder / "matrix.npy", 2.0 * transforms.build("hadamard", 16))  # a user's matrix: no fast library
    for name, extra in (("dft", ()), ("hadamard", ()), (str(folder / "matrix.npy"), ()), ("dct", ("--norm", "ortho"))):
        path = folder / f"{Path(name).stem}.h5"
        result = CliRunner().invoke(app, ["learn", name, "--n", "16", "-o", str(path), "-q", *extra])
        assert result.exit_code == 0, result.output
        out[Path(name).stem] = path
    return out


def _bench_json(bfly, path, *args):
    result = bfly("bench", path, "--repeat", "2", "--batch", "1,4", "--threads", "1", "--json", *args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_json_document_structure_and_positive_ratios(bfly, files):
    doc = _bench_json(bfly, files["dft"])
    assert doc["transform"] == "dft" and doc["n"] == 16 and doc["device"] == "cpu" and doc["threads"] == 1
    assert doc["input_dtype"] == "complex128" and doc["repeat"] == 2
    assert set(doc["methods"]) == set(bench.METHOD_KEYS)
    assert doc["fast_library"] in ("FFTW", "scipy.fft") and doc["methods"]["fast"]["library"] == doc["fast_library"]
    assert doc["methods"]["fast"]["label"].startswith(("FFTW fft", "scipy.fft.fft"))
    assert doc["accuracy"]["rel_error"] < 1e-12 and doc["accuracy"]["exact"] is True
    assert [row["batch"] for row in doc["results"]] == [1, 4]
    for row in doc["results"]:
        for key in bench.METHOD_KEYS:
            value = row["us_per_vector"][key]
            assert isinstance(value, float) and value > 0 and math.isfinite(value)
        for key in ("dense_over_butterfly", "butterfly_over_fast"):
            assert isinstance(row["ratios"][key], float) and row["ratios"][key] > 0
        us = row["us_per_vector"]
        assert row["ratios"]["dense_over_butterfly"] == pytest.approx(us["dense"] / us["butterfly"])


def test_every_method_computes_the_same_product(bfly, files):
    """Exact DFT factors: butterfly, torch, dense and scipy.fft all agree with the reference."""
    doc = _bench_json(bfly, files["dft"])
    for key in bench.METHOD_KEYS:
        assert doc["rel_diff"][key] < 1e-12, key


def test_transform_without_fast_library_reports_why(bfly, files):
    doc = _bench_json(bfly, files["matrix"])
    fast = doc["methods"]["fast"]
    assert fast["available"] is False and "'file'" in fast["reason"]
    assert all(row["us_per_vector"]["fast"] is None for row in doc["results"])
    assert all(row["ratios"]["butterfly_over_fast"] is None for row in doc["results"])
    assert all(row["ratios"]["dense_over_butterfly"] > 0 for row in doc["results"])


def test_table_output(bfly, files):
    result = bfly("bench", files["hadamard"], "--repeat", "2", "--batch", "2", "--threads", "1")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert ("bfly/fast" in out or "unstable" in out) and "rel_error" in out
    assert "FFTW WHT" in out or "numpy WHT (not compiled" in out  # the baseline says what it is
    for header in ("median", "min", "IQR", "status"):
        assert header in out


@pytest.mark.parametrize(("name", "options"), [
    ("dft", {}), ("idft", {}), ("dct", {}), ("dct", {"norm": "ortho"}), ("dst", {}), ("dst", {"norm": "ortho"}),
    ("hadamard", {}), ("hartley", {}), ("convolution", {}), ("convolution", {"seed": 3}),
])
@pytest.mark.parametrize("single", [False, True])
def test_fast_baseline_equals_the_named_transform(name, options, single):
    """Each baseline computes T x for the transform the metadata names, keeping the precision."""
    n = 32
    target = transforms.build(name, n, **options)
    real = not np.iscomplexobj(target)
    dtype = np.dtype({(True, False): np.float64, (True, True): np.float32,
                      (False, False): np.complex128, (False, True): np.complex64}[(real, single)])
    x = bench.make_input(3, n, dtype)
    method = bench.fast_baseline({"transform": name, "transform_options": options}, n, real, 1)
    y = method.result(x)
    assert y.dtype == dtype
    np.testing.assert_allclose(y, x @ target.T, atol=2e-5 if single else 1e-12)


def test_fwht_matches_sylvester_hadamard():
    x = np.random.default_rng(1).standard_normal((2, 3, 64))
    np.testing.assert_allclose(bench.fwht(x, 0.25), 0.25 * x @ scipy.linalg.hadamard(64).T, atol=1e-12)


def test_numpy_reference_stands_in_when_the_kernel_is_missing(monkeypatch, files):
    from bfly_cli import kernel

    monkeypatch.setattr(kernel, "available", lambda: False)
    doc = bench.run_bench(load(files["dct"]), batches=[2], threads=1, repeat=2)
    assert doc["kernel_available"] is False
    assert "numpy reference" in doc["methods"]["butterfly"]["label"]
    assert doc["rel_diff"]["butterfly"] == 0.0


def test_factors_the_kernel_cannot_run_fall_back_to_the_reference(monkeypatch, files):
    """A step kind the kernel does not implement costs the kernel row, not the benchmark."""
    from bfly_cli import kernel

    def refuse(*args, **kwargs):
        raise ValueError("unknown step kind 'future'")

    monkeypatch.setattr(kernel, "Plan", refuse)
    doc = bench.run_bench(load(files["dft"]), batches=[2], threads=1, repeat=1)
    assert doc["kernel_available"] is False and "future" in doc["methods"]["butterfly"]["label"]
    assert doc["rel_diff"]["butterfly"] == 0.0 and doc["results"][0]["us_per_vector"]["butterfly"] > 0
    monkeypatch.setattr(kernel, "unsupported_kinds", lambda factors: ["newkind"], raising=False)
    doc = bench.run_bench(load(files["dft"]), batches=[2], threads=1, repeat=1)
    assert doc["kernel_available"] is False and "newkind" in doc["methods"]["butterfly"]["label"]


def test_threads_setting_is_restored(files):
    import torch

    before = torch.get_num_threads()
    bench.run_bench(load(files["hadamard"]), batches=[1], threads=1, repeat=1)
    assert torch.get_num_threads() == before


def test_cuda_without_gpu_is_one_line_exit_2(bfly, files):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    result = bfly("bench", files["dft"], "--device", "cuda")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "cuda" in result.stderr


def test_bench_on_cuda_agrees_with_the_reference(bfly, files):
    """On a GPU: every timed method (torch path, dense, torch.fft) computes the reference product."""
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    for name in ("dft", "dct", "matrix"):
        doc = _bench_json(bfly, files[name], "--device", "cuda")
        assert doc["device"] == "cuda"
        for key, diff in doc["rel_diff"].items():
            assert diff is None or diff < 1e-10, (name, key)
        assert all(row["us_per_vector"]["butterfly"] > 0 for row in doc["results"])


@pytest.mark.parametrize("args", [("--batch", "0"), ("--batch", "1,x"), ("--repeat", "0"), ("--threads", "0"),
                                  ("--device", "tpu")])
def test_bad_options_exit_2(bfly, files, args):
    result = bfly("bench", files["dft"], *args)
    assert result.exit_code == 2 and result.stderr.startswith("error: ") and result.stderr.count("\n") == 1


def test_corrupt_and_missing_files_exit_2(bfly, files, tmp_path):
    truncated = tmp_path / "cut.h5"
    truncated.write_bytes(files["dft"].read_bytes()[:700])
    for path in (truncated, tmp_path / "absent.h5"):
        result = bfly("bench", path, "--repeat", "1")
        assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.stderr
