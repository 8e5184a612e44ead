"""bfly verify: honest files pass; tampered factors or metadata exit 1; unreadable files, missing
or changed source matrices exit 2."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from bfly_cli import transforms
from bfly_cli import verification as vf
from bfly_cli.cli import app
from bfly_cli.factors import Factors, Step
from bfly_cli.h5format import load, save


def _learn(path, *args) -> None:
    result = CliRunner().invoke(app, ["learn", *map(str, args), "-o", str(path), "-q"])
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("verify")
    out = {"dft": folder / "dft.h5", "dct32": folder / "dct32.h5"}
    _learn(out["dft"], "dft", "--n", 16)
    out["approx"] = _approximate_file(folder / "approx.h5")
    _learn(out["dct32"], "dct", "--n", 16, "--norm", "ortho", "--dtype", "float32")
    return out


def _approximate_file(path):
    """Random twiddles filed as an approximation of the orthonormal DCT, with their true errors:
    honest but far-from-exact claims, independent of which solvers exist. The options matter:
    the paper-scaled DCT would not reproduce these errors."""
    from bfly_cli.metrics import error_report

    rng = np.random.default_rng(5)
    factors = Factors(16, [Step("permutation", rng.permutation(16)), Step("butterfly", rng.standard_normal((4, 8, 2, 2)) / 2)])
    errors = error_report(factors.to_dense(), transforms.build("dct", 16, norm="ortho"))
    factors.meta = {"transform": "dct", "transform_options": {"norm": "ortho"}, "n": 16, "solver": "test",
                    "seconds": 0.0, "seed": 0, "bfly_version": "test", "created": "now", "command": "test", **errors}
    return save(factors, path)


def _copy(src, tmp_path, name="f.h5"):
    return shutil.copy(src, tmp_path / name)


def _perturb_first_parameter(path, delta: float) -> None:
    """Add ``delta`` to the first number of the first learned (non-permutation) step, in place."""
    with h5py.File(path, "r+") as handle:
        for k in range(len(handle["steps"])):
            group = handle["steps"][str(k)]
            if group.attrs["kind"] != "permutation" and "data" in group:
                data = group["data"][()]
                data.reshape(-1)[0] += delta
                group["data"][...] = data
                return
    raise AssertionError("no learned step to perturb")


def _verify_json(bfly, path, *args):
    result = bfly("verify", path, "--json", *args)
    return result, (json.loads(result.stdout) if result.stdout else None)


@pytest.mark.parametrize("which", ["dft", "approx", "dct32"])
def test_honest_files_pass(bfly, files, which):
    result, doc = _verify_json(bfly, files[which])
    assert result.exit_code == 0, result.stderr
    assert doc["passed"] is True and doc["reasons"] == []
    for key in vf.MEASURES:
        assert abs(doc["recomputed"][key] - doc["recorded"][key]) <= doc["allowed_difference"][key]


def test_json_fields(bfly, files):
    _, doc = _verify_json(bfly, files["approx"])
    assert doc["transform"] == "dct" and doc["transform_options"] == {"norm": "ortho"}
    assert doc["n"] == 16 and doc["structure"] == load(files["approx"]).structure
    assert doc["source"] is None and doc["tol"] is None
    assert set(doc["recorded"]) == set(doc["recomputed"]) == set(vf.MEASURES)


def test_tol(bfly, files):
    result, doc = _verify_json(bfly, files["approx"], "--tol", "1e-3")
    assert result.exit_code == 1 and doc["passed"] is False and "--tol" in doc["reasons"][0]
    assert result.stderr.count("\n") == 1
    assert bfly("verify", files["approx"], "--tol", "10").exit_code == 0


def test_tampered_twiddle_exits_1(bfly, files, tmp_path):
    path = _copy(files["dft"], tmp_path)
    _perturb_first_parameter(path, 0.1)
    result, doc = _verify_json(bfly, path)
    assert result.exit_code == 1 and doc["passed"] is False
    assert any(r.startswith("rel_error") and "worse" in r for r in doc["reasons"])


def test_small_tamper_of_approximate_factors_is_caught(bfly, files, tmp_path):
    """Approximate factors (large rel_error) changed by 1e-4 in one number: still not reproduced.
    (These twiddles are not a least-squares optimum, where the error would move only to second
    order; see docs/cli.md.)"""
    path = _copy(files["approx"], tmp_path)
    _perturb_first_parameter(path, 1e-4)
    result, _ = _verify_json(bfly, path)
    assert result.exit_code == 1


@pytest.mark.parametrize(("factor", "side"), [(0.5, "worse"), (2.0, "better")])
def test_metadata_that_does_not_describe_the_factors_exits_1(bfly, files, tmp_path, factor, side):
    path = _copy(files["approx"], tmp_path)
    with h5py.File(path, "r+") as handle:
        handle.attrs["rel_error"] = handle.attrs["rel_error"] * factor
    result, doc = _verify_json(bfly, path)
    assert result.exit_code == 1 and any(side in r for r in doc["reasons"])


def test_source_matrix_file(bfly, tmp_path):
    """A changed source matrix exits 2 (there is nothing trustworthy to compare against); a
    missing one exits 2 naming --source; --source with the same values passes."""
    matrix = tmp_path / "m.npy"
    np.save(matrix, 3.0 * transforms.build("hadamard", 16))  # exactly factorable: learns in milliseconds
    factors = tmp_path / "m.h5"
    _learn(factors, matrix)
    assert bfly("verify", factors).exit_code == 0
    moved = tmp_path / "moved.npy"
    shutil.move(matrix, moved)
    result = bfly("verify", factors)
    assert result.exit_code == 2 and "--source" in result.stderr and result.stderr.count("\n") == 1
    assert bfly("verify", factors, "--source", moved).exit_code == 0
    changed = np.load(moved)
    changed[3, 4] += 1e-9
    np.save(moved, changed)
    result = bfly("verify", factors, "--source", moved)
    assert result.exit_code == 2 and "changed" in result.stderr and result.stdout == ""


@pytest.mark.parametrize("damage", ["truncate", "garbage", "missing", "no_steps"])
def test_unreadable_files_exit_2(bfly, files, tmp_path, damage):
    path = tmp_path / "f.h5"
    if damage == "truncate":
        path.write_bytes(files["dft"].read_bytes()[:1200])
    elif damage == "garbage":
        path.write_bytes(b"not hdf5 at all" * 10)
    elif damage == "no_steps":
        shutil.copy(files["dft"], path)
        with h5py.File(path, "r+") as handle:
            del handle["steps"]
    result = bfly("verify", path)
    assert result.exit_code == 2 and result.stderr.startswith("error: ") and result.stderr.count("\n") == 1


def test_library_file_without_recipe_exits_2(bfly, tmp_path):
    """Factors from bfly_cli.learn() without meta record transform 'matrix': nothing to rebuild."""
    from bfly_cli.learning import learn

    path = save(learn(np.random.default_rng(1).standard_normal((8, 8))), tmp_path / "lib.h5")
    result = bfly("verify", path)
    assert result.exit_code == 2 and "no target to rebuild" in result.stderr


def test_table_output(bfly, files):
    result = bfly("verify", files["dft"])
    assert result.exit_code == 0 and "recomputed" in result.stdout and "reproduce" in result.stdout


def test_allowed_difference_rule():
    assert vf.allowed_difference(3e-16, "complex128") == pytest.approx(1e-12)  # exact: floor
    assert vf.allowed_difference(0.5, "float64") == pytest.approx(5e-7 + 1e-12, rel=1e-6)  # approximate: 1e-6 rel
    assert vf.allowed_difference(5e-8, "float32") == pytest.approx(5e-8 * 1e-6 + 4.5e-7)  # exact f32: ~10x
