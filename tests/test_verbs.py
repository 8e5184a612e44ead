"""One library call per CLI verb (#14 item 3): ``bfly_cli.learn`` / ``analyze`` / ``verify`` give
what the commands give, and a file saved from Python is accepted by ``bfly verify`` and ``bfly bench``
exactly as a CLI-made one.

Matrices handed over in memory are built by scipy (another road than ``transforms/``).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.fft

import bfly_cli
from bfly_cli.errors import BflyError, CheckFailed

_VOLATILE = {"seconds", "created", "command", "auto_tried", "auto_reason"}


def _stable(meta: dict) -> dict:
    return {k: v for k, v in meta.items() if k not in _VOLATILE}


def test_learn_named_matches_the_cli(bfly, tmp_path) -> None:
    cli_file = tmp_path / "cli.h5"
    assert bfly("learn", "dct", "--n", "16", "--norm", "ortho", "-o", str(cli_file)).exit_code == 0
    factors = bfly_cli.learn("dct", n=16, norm="ortho")
    lib_file = bfly_cli.save(factors, tmp_path / "lib.h5")
    from_cli = bfly_cli.load(cli_file)
    assert _stable(from_cli.meta) == _stable(bfly_cli.load(lib_file).meta)
    np.testing.assert_array_equal(from_cli.to_dense(), factors.to_dense())
    for command in (("verify", str(lib_file)), ("bench", str(lib_file), "--batch", "1", "--repeat", "1")):
        result = bfly(*command)
        assert result.exit_code == 0, result.output


def test_learn_matrix_in_memory_and_verify_with_source(bfly, tmp_path) -> None:
    a = scipy.fft.fft(np.eye(16), axis=0, norm="ortho")
    factors = bfly_cli.learn(a)
    assert factors.meta["transform"] == "matrix" and factors.meta["exact"] is True
    path = bfly_cli.save(factors, tmp_path / "m.h5")
    refused = bfly("verify", str(path))
    assert refused.exit_code == 2 and "in-memory matrix" in refused.output
    np.save(tmp_path / "a.npy", a)
    assert bfly("verify", str(path), "--source", str(tmp_path / "a.npy")).exit_code == 0
    assert bfly_cli.verify(path, source=tmp_path / "a.npy")["passed"] is True
    np.save(tmp_path / "b.npy", a * 2)
    changed = bfly("verify", str(path), "--source", str(tmp_path / "b.npy"))
    assert changed.exit_code == 2 and "sha256" in changed.output


def test_learn_matrix_file(tmp_path) -> None:
    np.save(tmp_path / "h.npy", scipy.fft.dct(np.eye(8), axis=0, norm="ortho"))
    factors = bfly_cli.learn(str(tmp_path / "h.npy"))
    assert factors.meta["transform"] == "file" and factors.meta["source"].endswith("h.npy")
    assert bfly_cli.verify(bfly_cli.save(factors, tmp_path / "h.h5"))["passed"] is True


def test_learn_refuses_like_the_cli() -> None:
    a = scipy.fft.fft(np.eye(8), axis=0)
    with pytest.raises(BflyError, match="apply to named transforms"):
        bfly_cli.learn(a, norm="ortho")
    with pytest.raises(BflyError, match="apply to --solver gradient"):
        bfly_cli.learn("dft", n=8, restarts=3)
    with pytest.raises(BflyError, match="needs a size"):
        bfly_cli.learn("dft")
    with pytest.raises(BflyError, match="not square"):
        bfly_cli.learn(np.ones((8, 4)))
    with pytest.raises(CheckFailed) as failed:
        bfly_cli.learn("randn", n=8, tol=1e-30, budget=1, strict_budget=True)
    assert failed.value.factors is not None


def test_analyze_and_verify_return_the_json_documents(bfly, tmp_path) -> None:
    cli = json.loads(bfly("analyze", "hadamard", "--n", "16", "--json").stdout)
    lib = bfly_cli.analyze("hadamard", 16)
    assert lib["verdict"] == cli["verdict"] and lib["transform"] == "hadamard"
    assert bfly_cli.analyze(scipy.fft.fft(np.eye(16), axis=0))["verdict"].startswith("exact")
    path = tmp_path / "d.h5"
    assert bfly("learn", "dft", "--n", "8", "-o", str(path)).exit_code == 0
    from_cli = json.loads(bfly("verify", str(path), "--json").stdout)
    assert bfly_cli.verify(path)["checked"] == from_cli["checked"]


def test_bench_returns_the_json_document(bfly, tmp_path) -> None:
    path = tmp_path / "h.h5"
    assert bfly("learn", "hadamard", "--n", "16", "-o", str(path)).exit_code == 0
    from_cli = json.loads(bfly("bench", str(path), "--batch", "1", "--repeat", "2", "--json").stdout)
    doc = bfly_cli.bench(path, [1], repeat=2)
    assert set(doc) == set(from_cli) and doc["threads"] == from_cli["threads"] == 1
    from_object = bfly_cli.bench(bfly_cli.load(path), "1", repeat=2)
    assert from_object["file"] is None and set(from_object) == set(doc)
    with pytest.raises(BflyError):
        bfly_cli.bench(path, "1,x")
