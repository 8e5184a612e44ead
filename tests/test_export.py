"""bfly export: every format round-trips exactly, reads as documented with its own tools, and bad
input exits 2 without touching existing files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.io
import torch
from typer.testing import CliRunner

from bfly_cli import export as ex
from bfly_cli.cli import app
from bfly_cli.errors import BflyError, FormatError
from bfly_cli.factors import STEP_KINDS, Factors, Step
from bfly_cli.h5format import load, save

FORMATS = ("npz", "pt", "mat", "json")


def _synthetic_meta(n: int) -> dict:
    """The attributes a factor file must carry (values are placeholders: these are not learned)."""
    return {"transform": "randn", "transform_options": {}, "n": n, "solver": "test", "rmse": 0.0, "rel_error": 0.0,
            "max_abs_error": 0.0, "seconds": 0.0, "seed": 0, "bfly_version": "test", "created": "now",
            "command": "test"}


def _mixed_steps(n: int) -> list[Step]:
    """Every step kind, complex64 twiddles and a float32 diagonal: the awkward case for every format."""
    rng = np.random.default_rng(7)
    levels = n.bit_length() - 1
    tw = rng.standard_normal((levels, n // 2, 2, 2)) + 1j * rng.standard_normal((levels, n // 2, 2, 2))
    return [Step("permutation", rng.permutation(n)), Step("butterfly", tw.astype(np.complex64)),
            Step("diagonal", rng.standard_normal(n).astype(np.float32)), Step("permutation", rng.permutation(n)),
            Step("real")]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder, out = tmp_path_factory.mktemp("export"), {}
    for name in ("dft", "hadamard"):
        path = folder / f"{name}.h5"
        assert CliRunner().invoke(app, ["learn", name, "--n", "16", "-o", str(path), "-q"]).exit_code == 0
        out[name] = path
    out["mixed"] = save(Factors(8, _mixed_steps(8), _synthetic_meta(8)), folder / "mixed.h5")
    if "rank2" in STEP_KINDS:  # the 2-slot real butterfly of the rank-2 routes
        stages = np.random.default_rng(3).standard_normal((3, 4, 2, 2, 2, 2))
        out["rank2"] = save(Factors(8, [Step("permutation", np.arange(8)[::-1].copy()), Step("rank2", stages)],
                                    _synthetic_meta(8)), folder / "rank2.h5")
    out["tiny"] = save(Factors(2, [Step("butterfly", np.arange(4.0).reshape(1, 1, 2, 2))], _synthetic_meta(2)),
                       folder / "tiny.h5")
    return out


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("which", ["dft", "hadamard", "mixed", "tiny", "rank2"])
def test_round_trip_is_exact(bfly, files, tmp_path, fmt, which):
    if which not in files:
        pytest.skip("no rank2 step kind in this checkout")
    out = tmp_path / f"x.{fmt}"
    result = bfly("export", files[which], "--format", fmt, "-o", out)
    assert result.exit_code == 0, result.stderr
    original, back = load(files[which]), ex.load_export(out)
    assert back.structure == original.structure and back.dtype == original.dtype
    assert np.array_equal(back.to_dense(), original.to_dense())
    assert back.meta["rel_error"] == original.meta["rel_error"] and back.meta["transform"] == original.meta["transform"]


def test_default_output_is_next_to_the_file(bfly, files, tmp_path):
    source = tmp_path / "sub" / "f.h5"
    source.parent.mkdir()
    source.write_bytes(files["dft"].read_bytes())
    result = bfly("export", source, "--format", "npz", "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["output"] == str(tmp_path / "sub" / "f.npz") and doc["bytes"] > 0 and doc["format"] == "npz"


def test_npz_reads_with_numpy_alone(files, tmp_path):
    factors = load(files["mixed"])
    ex.export(factors, tmp_path / "m.npz", "npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as z:
        assert sorted(z.files) == ["meta", "step0_permutation", "step1_butterfly", "step2_diagonal",
                                   "step3_permutation", "step4_real"]
        meta = json.loads(str(z["meta"]))
        for k, step in enumerate(factors.steps):
            array = z[f"step{k}_{step.kind}"]
            if step.data is None:
                assert array.size == 0
            else:
                assert array.dtype == step.data.dtype and np.array_equal(array, step.data)
    assert meta["structure"] == "RPDBP" and meta["n"] == 8 and meta["transform"] == "randn"


def test_mat_reads_as_documented(files, tmp_path):
    """Variables as documented: 1-based double permutations (column), 4-D twiddles, n, kinds."""
    factors = load(files["mixed"])
    ex.export(factors, tmp_path / "m.mat", "mat")
    v = scipy.io.loadmat(tmp_path / "m.mat")
    assert v["n"].item() == 8 and str(v["structure"][0]) == "RPDBP"
    assert [str(k[0]) for k in v["kinds"].ravel()] == [s.kind for s in factors.steps]
    perm = v["step0_permutation"]
    assert perm.shape == (8, 1) and perm.dtype == np.float64
    assert np.array_equal(perm.ravel() - 1, factors.steps[0].data)
    assert v["step1_butterfly"].shape == (3, 4, 2, 2) and v["step1_butterfly"].dtype == np.complex64
    assert json.loads(str(v["meta_json"][0]))["structure"] == "RPDBP"


def test_pt_is_a_state_dict_for_the_torch_modules(files, tmp_path):
    """Plain tensors under steps_to_modules' keys; loading it into that module reproduces M x."""
    from bfly_cli.torch_butterfly import steps_to_modules

    factors = load(files["dft"])
    ex.export(factors, tmp_path / "d.pt", "pt")
    state = torch.load(tmp_path / "d.pt", weights_only=True)
    assert set(state) == {"0.perm", "1.twiddle"}
    assert state._metadata["bfly"]["kinds"] == ["permutation", "butterfly"]
    module = steps_to_modules(factors.steps)
    module.load_state_dict(state)
    x = np.random.default_rng(0).standard_normal((3, 16)) + 0j
    with torch.no_grad():
        y = module(torch.as_tensor(x)).numpy()
    np.testing.assert_allclose(y, factors.apply_reference(x), atol=1e-13)


def test_pt_rank2_is_a_state_dict_for_the_torch_modules(files, tmp_path):
    """A rank2 step is a Rank2 module whose 'stages' tensor is the file's data; M x matches."""
    from bfly_cli.torch_butterfly import steps_to_modules

    if "rank2" not in files:
        pytest.skip("no rank2 step kind in this checkout")
    factors = load(files["rank2"])
    ex.export(factors, tmp_path / "r.pt", "pt")
    state = torch.load(tmp_path / "r.pt", weights_only=True)
    assert set(state) == {"0.perm", "1.stages"}
    assert np.array_equal(state["1.stages"].numpy(), factors.steps[1].data)
    module = steps_to_modules(factors.steps)
    module.load_state_dict(state)
    x = np.random.default_rng(1).standard_normal((3, 8))
    with torch.no_grad():
        y = module(torch.as_tensor(x)).numpy()
    np.testing.assert_allclose(y, factors.apply_reference(x), atol=1e-13)


def test_pt_refuses_steps_without_a_module(bfly, files, tmp_path, monkeypatch):
    if "rank2" not in files:
        pytest.skip("no rank2 step kind in this checkout")
    from bfly_cli import torch_butterfly

    monkeypatch.delitem(torch_butterfly.STEP_MODULES, "rank2")  # as if torch_butterfly had no rank2 module
    result = bfly("export", files["rank2"], "--format", "pt", "-o", tmp_path / "r.pt")
    assert result.exit_code == 2 and "rank2" in result.stderr and result.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_json_is_readable_with_complex_pairs(files, tmp_path):
    ex.export(load(files["dft"]), tmp_path / "d.json", "json")
    doc = json.loads((tmp_path / "d.json").read_text())
    assert doc["format"] == "bfly.factors.json" and doc["n"] == 16 and doc["structure"] == "BP"
    butterfly = doc["steps"][1]
    assert butterfly["complex"] is True and butterfly["shape"] == [4, 8, 2, 2]
    assert np.array(butterfly["data"]).shape == (4, 8, 2, 2, 2)
    assert doc["steps"][0]["data"] == load(files["dft"]).steps[0].data.tolist()


def test_json_refuses_large_n(bfly, tmp_path):
    n = 8192
    big = save(Factors(n, [Step("butterfly", np.ones((13, n // 2, 2, 2)))], _synthetic_meta(n)), tmp_path / "big.h5")
    result = bfly("export", big, "--format", "json")
    assert result.exit_code == 2 and "--force-large" in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "big.json").exists()
    ex.check_json_size(load(big), force_large=True)  # the flag lifts the limit


def test_existing_output_needs_force(bfly, files, tmp_path):
    out = tmp_path / "x.npz"
    out.write_bytes(b"precious")
    result = bfly("export", files["dft"], "--format", "npz", "-o", out)
    assert result.exit_code == 2 and "--force" in result.stderr and result.stderr.count("\n") == 1
    assert out.read_bytes() == b"precious"
    assert bfly("export", files["dft"], "--format", "npz", "-o", out, "--force").exit_code == 0
    assert ex.load_export(out).n == 16


def test_unknown_format_exit_2_writes_nothing(bfly, files, tmp_path):
    result = bfly("export", files["dft"], "--format", "csv", "-o", tmp_path / "x.csv")
    assert result.exit_code == 2 and "'npz', 'pt', 'mat', 'json'" in result.stderr and result.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_corrupt_factor_file_exit_2_writes_nothing(bfly, files, tmp_path):
    cut = tmp_path / "cut.h5"
    cut.write_bytes(files["dft"].read_bytes()[:900])
    result = bfly("export", cut, "--format", "npz")
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.h5"]


def test_output_onto_the_input_or_into_missing_folder_exit_2(bfly, files, tmp_path):
    copy = tmp_path / "f.json"
    copy.write_bytes(files["dft"].read_bytes())  # a factor file with a misleading name
    result = bfly("export", copy, "--format", "json", "--force")
    assert result.exit_code == 2 and "itself" in result.stderr
    result = bfly("export", files["dft"], "--format", "npz", "-o", tmp_path / "no" / "x.npz")
    assert result.exit_code == 2 and "does not exist" in result.stderr


@pytest.mark.parametrize("fmt", FORMATS)
def test_damaged_exports_raise_format_error(files, tmp_path, fmt):
    out = tmp_path / f"x.{fmt}"
    ex.export(load(files["dft"]), out, fmt)
    out.write_bytes(out.read_bytes()[: len(out.read_bytes()) // 2])
    with pytest.raises(FormatError):
        ex.load_export(out)


def test_load_export_unknown_extension():
    with pytest.raises(BflyError):
        ex.load_export("factors.txt")
