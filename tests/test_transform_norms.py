"""scipy's scaling conventions (#14 item 5): ``--norm backward|ortho|forward|paper`` on dft, idft,
dct, dst and ``--type 2|3|4`` on dct, dst.

Every expected matrix is built here from scipy.fft (or a naive formula), never through
``transforms/``: the columns of ``scipy.fft.<fn>(eye(N), norm=..., axis=0)``.
"""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import scipy.fft

from bfly_cli import transforms
from bfly_cli import bench_run as bench, h5format
from bfly_cli.learning import learn

NORMS = ("backward", "ortho", "forward", "paper")
SCIPY = {"dft": scipy.fft.fft, "idft": scipy.fft.ifft, "dct": scipy.fft.dct, "dst": scipy.fft.dst}
CASES = [(name, norm, None) for name in ("dft", "idft") for norm in NORMS] + [
    (name, norm, kind) for name in ("dct", "dst") for norm in NORMS for kind in (2, 3, 4)]


def scipy_matrix(name: str, n: int, norm: str, kind: int | None) -> np.ndarray:
    """The target by scipy alone: the DFT's ``paper`` is the unitary one, the DCT/DST's is scipy's
    unnormalized transform / sqrt(N)."""
    eye = np.eye(n)
    if kind is None:
        return SCIPY[name](eye, norm="ortho" if norm == "paper" else norm, axis=0)
    if norm == "paper":
        return SCIPY[name](eye, type=kind, axis=0) / np.sqrt(n)
    return SCIPY[name](eye, type=kind, norm=norm, axis=0)


def _options(norm: str | None, kind: int | None) -> dict:
    return {k: v for k, v in (("norm", norm), ("type", kind)) if v is not None}


@pytest.mark.parametrize("n", [8, 16])
@pytest.mark.parametrize(("name", "norm", "kind"), CASES)
def test_matrix_is_scipys(name: str, norm: str, kind: int | None, n: int) -> None:
    built = transforms.build(name, n, **_options(norm, kind))
    np.testing.assert_allclose(built, scipy_matrix(name, n, norm, kind), rtol=0, atol=1e-14)


def test_defaults_are_kept() -> None:
    """dft/idft stay unitary, dct/dst stay the paper's type II: the paper's tables use them."""
    n = 16
    k, j = np.arange(n)[:, None], np.arange(n)[None, :]
    np.testing.assert_allclose(transforms.build("dft", n), np.exp(-2j * np.pi * k * j / n) / np.sqrt(n), atol=1e-14)
    np.testing.assert_allclose(transforms.build("idft", n), np.exp(2j * np.pi * k * j / n) / np.sqrt(n), atol=1e-14)
    np.testing.assert_allclose(transforms.build("dct", n), 2 * np.cos(np.pi * k * (2 * j + 1) / (2 * n)) / np.sqrt(n), atol=1e-14)
    np.testing.assert_allclose(transforms.build("dst", n), 2 * np.sin(np.pi * (k + 1) * (2 * j + 1) / (2 * n)) / np.sqrt(n), atol=1e-14)


def test_paper_types_3_and_4_by_formula() -> None:
    """``paper`` for types III and IV is the unnormalized sum of scipy's docs / sqrt(N), written out."""
    n = 8
    k, j = np.arange(n)[:, None], np.arange(n)[None, :]
    first = np.where(j == 0, 1.0, 2.0)  # DCT-III: x_0 once, the others twice
    last = np.where(j == n - 1, 1.0, 2.0)  # DST-III: x_{N-1} once
    expected = {
        ("dct", 3): first * np.cos(np.pi * (2 * k + 1) * j / (2 * n)),
        ("dct", 4): 2 * np.cos(np.pi * (2 * k + 1) * (2 * j + 1) / (4 * n)),
        ("dst", 3): last * np.sin(np.pi * (2 * k + 1) * (j + 1) / (2 * n)),
        ("dst", 4): 2 * np.sin(np.pi * (2 * k + 1) * (2 * j + 1) / (4 * n)),
    }
    for (name, kind), matrix in expected.items():
        np.testing.assert_allclose(transforms.build(name, n, type=kind), matrix / np.sqrt(n), atol=1e-14)


def test_option_values_are_canonical() -> None:
    """``"3"`` (typed in Python) and ``np.int64(3)`` mean type 3 and are recorded as the int 3."""
    from bfly_cli.targets import resolve

    target = resolve("dct", 8, type=np.int64(3), norm="ortho")
    assert target.options == {"type": 3, "norm": "ortho"} and type(target.options["type"]) is int
    np.testing.assert_allclose(target.matrix, scipy_matrix("dct", 8, "ortho", 3), atol=1e-14)
    np.testing.assert_array_equal(transforms.build("dct", 8, type="3", norm="ortho"), target.matrix)


@pytest.mark.parametrize(("name", "flags", "recorded", "norm", "kind"), [
    ("dct", ("--type", "3", "--norm", "ortho"), {"type": 3, "norm": "ortho"}, "ortho", 3),
    ("dst", ("--type", "4"), {"type": 4}, "paper", 4),
    ("dft", ("--norm", "forward"), {"norm": "forward"}, "forward", None),
    ("idft", ("--norm", "backward"), {"norm": "backward"}, "backward", None),
])
def test_learn_then_verify(bfly, tmp_path, name: str, flags: tuple, recorded: dict, norm: str, kind: int | None) -> None:
    """The file records the options, its factors are scipy's matrix, and verify rebuilds it."""
    out = tmp_path / "f.h5"
    result = bfly("learn", name, "--n", "16", *flags, "-o", out, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["exact"] is True
    with h5py.File(out, "r") as handle:
        assert json.loads(handle.attrs["transform_options"]) == recorded
    np.testing.assert_allclose(h5format.load(out).to_dense(), scipy_matrix(name, 16, norm, kind), atol=1e-13)
    verified = bfly("verify", out)
    assert verified.exit_code == 0, verified.stderr


@pytest.mark.parametrize(("args", "names"), [
    (("dct", "--norm", "fwd"), "'backward', 'ortho', 'forward', 'paper'"),  # refused while parsing (a choice)
    (("dft", "--norm", "unitary"), "'backward', 'ortho', 'forward', 'paper'"),
    (("dct", "--type", "5"), "2..4"),  # refused while parsing (limits.py), before any work
    (("dst", "--type", "1"), "2..4"),
    (("dft", "--type", "3"), "--norm"),
    (("hadamard", "--norm", "ortho"), "no options"),
])
def test_bad_values_exit_2(bfly, tmp_path, args: tuple, names: str) -> None:
    out = tmp_path / "f.h5"
    for verb in (("learn", *args[:1], "--n", "8", *args[1:], "-o", out), ("analyze", *args[:1], "--n", "8", *args[1:])):
        result = bfly(*verb)
        assert result.exit_code == 2
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1 and "; " in result.stderr
        assert names in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


def test_library_refuses_unknown_values() -> None:
    """The registry refuses them too (a factor file's recorded options, a Python caller)."""
    for name, options, names in (("dct", {"type": 5}, "2, 3, 4"), ("dst", {"norm": "Ortho"}, "backward, ortho, forward, paper"),
                                 ("idft", {"norm": None, "type": 2}, "--norm")):
        with pytest.raises(transforms.TransformOptionError, match=names):
            transforms.build(name, 8, **options)


def test_analyze_takes_type(bfly) -> None:
    result = bfly("analyze", "dct", "--n", "16", "--type", "4", "--norm", "ortho", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["verdict"].startswith("exact")


def test_list_says_values_default_and_why(bfly) -> None:
    doc = json.loads(bfly("list", "--json").stdout)
    rows = {row["name"]: row for row in doc["transforms"]}
    for name, default in (("dft", "ortho"), ("idft", "ortho"), ("dct", "paper"), ("dst", "paper")):
        norm = rows[name]["choices"]["norm"]
        assert norm["default"] == default and sorted(norm["values"]) == sorted(NORMS) and norm["why"]
    for name in ("dct", "dst"):
        assert rows[name]["choices"]["type"] == {"values": [2, 3, 4], "default": 2, "why": rows[name]["choices"]["type"]["why"]}
        assert rows[name]["choices"]["type"]["why"]
    assert "type" not in rows["dft"]["choices"] and rows["hadamard"]["choices"] == {}
    human = bfly("list").stdout
    assert "norm ortho" in human and "norm paper" in human and "type 2" in human


@pytest.mark.parametrize(("name", "norm", "kind"), [
    ("dct", "ortho", 3), ("dct", "ortho", 4), ("dst", "paper", 4), ("dst", "forward", 3),
    ("dft", "forward", None), ("idft", "backward", None),
])
def test_solver_finds_exact_factors(name: str, norm: str, kind: int | None) -> None:
    """The new scalings and types stay in an exact class (the DFTs: B.P; DCT/DST-III/IV: QP)."""
    target = scipy_matrix(name, 16, norm, kind)
    factors = learn(target)
    assert factors.meta["exact"] is True
    np.testing.assert_allclose(factors.to_dense(), target, atol=1e-13)


@pytest.mark.parametrize(("name", "options"), [
    ("dft", {"norm": "forward"}), ("idft", {"norm": "backward"}), ("dct", {"type": 3, "norm": "ortho"}),
    ("dct", {"type": 4}), ("dst", {"type": 3, "norm": "backward"}), ("dst", {"type": 4, "norm": "forward"}),
])
def test_bench_fast_baseline_follows_the_options(name: str, options: dict) -> None:
    """``bfly bench``'s fast library computes the recorded matrix, not the default one."""
    n = 16
    kind = options.get("type", 2 if name in ("dct", "dst") else None)
    target = scipy_matrix(name, n, options.get("norm", "ortho" if kind is None else "paper"), kind)
    x = np.random.default_rng(0).standard_normal((3, n)).astype(target.dtype)
    method = bench.fast_baseline({"transform": name, "transform_options": options}, n, kind is not None, 1)
    np.testing.assert_allclose(method.result(x), x @ target.T, atol=1e-12)
