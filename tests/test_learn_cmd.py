"""``bfly learn``/``show``/``list`` end to end, and every bad input the issue lists."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from bfly_cli import transforms
from conftest import random_butterfly


def _json(result) -> dict:
    return json.loads(result.stdout)


def test_learn_writes_default_file_and_json(bfly, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = bfly("learn", "dft", "--n", "32", "--json")
    assert result.exit_code == 0, result.stderr
    doc = _json(result)
    for key in ("transform", "n", "solver", "structure", "dtype", "params", "rmse", "rel_error",
                "max_abs_error", "exact", "seconds", "output"):
        assert key in doc, key
    assert doc["exact"] is True and doc["rel_error"] < 1e-12 and doc["output"] == "dft-32.h5"
    assert (tmp_path / "dft-32.h5").is_file()
    assert result.stderr == ""


def test_learn_human_summary_and_show(bfly, tmp_path: Path) -> None:
    out = tmp_path / "h.h5"
    result = bfly("learn", "hadamard", "--n", "16", "-o", out)
    assert result.exit_code == 0 and "exact" in result.stdout and "saved to" in result.stdout
    shown = bfly("show", out, "--json")
    doc = _json(shown)
    assert doc["metadata"]["structure"] == "BP" and [s["kind"] for s in doc["steps"]] == ["permutation", "butterfly"]
    assert "butterfly" in bfly("show", out).stdout


def test_quiet_prints_nothing(bfly, tmp_path: Path) -> None:
    result = bfly("learn", "dft", "--n", "8", "-o", tmp_path / "q.h5", "--quiet")
    assert result.exit_code == 0 and result.stdout == ""


def test_refuses_overwrite_then_force(bfly, tmp_path: Path) -> None:
    out = tmp_path / "d.h5"
    assert bfly("learn", "dft", "--n", "8", "-o", out, "-q").exit_code == 0
    before = out.read_bytes()
    again = bfly("learn", "dft", "--n", "16", "-o", out)
    assert again.exit_code == 2 and "--force" in again.stderr and out.read_bytes() == before
    assert bfly("learn", "dft", "--n", "16", "-o", out, "--force", "-q").exit_code == 0


def test_tol_missed_exits_1_and_writes_nothing(bfly, tmp_path: Path) -> None:
    out = tmp_path / "dct.h5"
    result = bfly("learn", "dct", "--n", "16", "-o", out, "--tol", "1e-12", "--json", "--solver", "hierarchical")
    assert result.exit_code == 1
    assert _json(result)["output"] is None and not out.exists()
    assert "above --tol" in result.stderr


@pytest.mark.parametrize("options", [["--norm", "ortho"], ["--dtype", "float32"]])
def test_options_recorded(bfly, tmp_path: Path, options: list[str]) -> None:
    name = "dct" if "--norm" in options else "dft"
    out = tmp_path / "o.h5"
    assert bfly("learn", name, "--n", "16", "-o", out, "-q", *options).exit_code == 0
    with h5py.File(out) as handle:
        if "--norm" in options:
            assert json.loads(handle.attrs["transform_options"]) == {"norm": "ortho"}
        else:
            assert handle.attrs["dtype"] == "complex64"


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".h5"])
def test_learn_from_matrix_file_shuffled_bp(bfly, tmp_path: Path, suffix: str) -> None:
    rng = np.random.default_rng(5)
    matrix = random_butterfly(64, rng)[:, rng.permutation(64)]
    path = tmp_path / f"m{suffix}"
    if suffix == ".npy":
        np.save(path, matrix)
    elif suffix == ".npz":
        np.savez(path, matrix=matrix)
    else:
        with h5py.File(path, "w") as handle:
            handle["group/matrix"] = matrix
    result = bfly("learn", path, "-o", tmp_path / "out.h5", "--json")
    doc = _json(result)
    assert result.exit_code == 0 and doc["exact"] and doc["n"] == 64 and doc["transform"] == "file"
    with h5py.File(tmp_path / "out.h5") as handle:
        assert len(handle.attrs["source_sha256"]) == 64


def _error(bfly, *args) -> str:
    result = bfly(*args)
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    assert result.stdout == "" and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    "n, message",
    [("12", "not a power of two; use a power of two such as 8 or 16"), ("1", "too small"),
     ("0", "too small"), ("1048576", "GiB of memory"), ("4194304", "GiB of memory")],
)
def test_bad_sizes(bfly, tmp_path: Path, n: str, message: str) -> None:
    assert message in _error(bfly, "learn", "dft", "--n", n, "-o", tmp_path / "x.h5")


def test_unknown_transform_suggests(bfly) -> None:
    assert "did you mean 'hadamard'" in _error(bfly, "learn", "hadamrd", "--n", "8")


def test_missing_n(bfly) -> None:
    assert "needs a size" in _error(bfly, "learn", "dft")


def _write(path: Path, array) -> Path:
    np.save(path, array)
    return path


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d / "missing.npy", "does not exist"),
        (lambda d: (d / "junk.npy").write_bytes(b"not numpy") and d / "junk.npy", "cannot read"),
        (lambda d: _write(d / "rect.npy", np.ones((4, 8))), "not square"),
        (lambda d: _write(d / "empty.npy", np.ones((0, 0))), "empty"),
        (lambda d: _write(d / "cube.npy", np.ones((4, 4, 4))), "3 dimensions"),
        (lambda d: _write(d / "text.npy", np.array([["a", "b"], ["c", "d"]])), "not numbers"),
        (lambda d: _write(d / "nan.npy", np.array([[1.0, np.nan], [0.0, np.inf]])), "NaN or Inf"),
        (lambda d: _write(d / "six.npy", np.ones((6, 6))), "not a power of two"),
        (lambda d: (np.savez(d / "two.npz", a=np.eye(4), b=np.eye(4)), d / "two.npz")[1], "holds 2 arrays"),
        (lambda d: (d / "bad.h5").write_bytes(b"\x89HDF\r\n") and d / "bad.h5", "not a valid HDF5"),
    ],
)
def test_bad_matrix_files(bfly, tmp_path: Path, make, message: str) -> None:
    path = make(tmp_path)
    assert message in _error(bfly, "learn", path, "-o", tmp_path / "x.h5")


def test_bad_output_paths(bfly, tmp_path: Path, monkeypatch) -> None:
    assert "does not exist; create it" in _error(bfly, "learn", "dft", "--n", "8", "-o", tmp_path / "no" / "x.h5")
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if mode == os.W_OK else real_access(p, mode))
    assert "no write permission" in _error(bfly, "learn", "dft", "--n", "8", "-o", tmp_path / "x.h5")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_read_only_directory(bfly, tmp_path: Path) -> None:
    locked = tmp_path / "ro"
    locked.mkdir(mode=0o500)
    assert "no write permission" in _error(bfly, "learn", "dft", "--n", "8", "-o", locked / "x.h5")


def test_show_bad_files(bfly, tmp_path: Path) -> None:
    out = tmp_path / "f.h5"
    bfly("learn", "dft", "--n", "8", "-o", out, "-q")
    with h5py.File(out, "r+") as handle:
        handle.attrs["format_version"] = 7
    assert "upgrade bfly" in _error(bfly, "show", out)
    cut = tmp_path / "cut.h5"
    cut.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 50)
    assert "not a readable HDF5" in _error(bfly, "show", cut)
    np.save(tmp_path / "m.npy", np.eye(4))
    assert "not a readable HDF5" in _error(bfly, "show", tmp_path / "m.npy")


def test_list(bfly) -> None:
    names = [t["name"] for t in _json(bfly("list", "--json"))["transforms"]]
    assert names == transforms.names()
    assert "hadamard" in bfly("list").stdout


def test_startup_does_not_import_heavy_modules() -> None:
    code = "import sys, bfly_cli.cli; print(sorted(m for m in ('numpy', 'torch', 'h5py', 'scipy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_console_script_version_and_help() -> None:
    done = subprocess.run([sys.executable, "-m", "bfly_cli.cli", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("bfly ")
    done = subprocess.run([sys.executable, "-m", "bfly_cli.cli", "learn", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "--tol" in done.stdout
