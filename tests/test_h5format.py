"""The HDF5 factor file: round trip, a reader using only h5py + numpy, validation, atomic writes."""

from __future__ import annotations

import re
from pathlib import Path

import h5py
import numpy as np
import pytest

import bfly_cli
from bfly_cli import transforms
from bfly_cli import h5format
from bfly_cli.errors import BflyError, FormatError

DOC = Path(__file__).resolve().parents[1] / "docs" / "file-format.md"


def _learned(tmp_path: Path, name: str = "dft", n: int = 64) -> tuple[Path, np.ndarray]:
    target = transforms.build(name, n)
    f = bfly_cli.factorize(target, meta={"transform": name, "transform_options": {}, "seed": 0})
    return bfly_cli.save(f, tmp_path / f"{name}.h5"), target


def _doc_reader():
    """The h5py-only reader printed in docs/file-format.md, executed as written."""
    code = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S).group(1)
    namespace: dict = {}
    exec(code, namespace)
    return namespace["apply_file"]


@pytest.mark.parametrize("name", ["dft", "hadamard", "dct"])  # dct: a QP file (a rank2 step)
def test_independent_reader_reproduces_the_matrix(tmp_path: Path, name: str) -> None:
    path, target = _learned(tmp_path, name)
    dense = _doc_reader()(str(path), np.eye(64)).T
    assert np.linalg.norm(dense - target) / np.linalg.norm(target) < 1e-12


def test_round_trip_keeps_steps_and_metadata(tmp_path: Path) -> None:
    path, _ = _learned(tmp_path)
    original = h5format.load(path)
    with h5py.File(path) as handle:
        for key in h5format.REQUIRED_ATTRS:
            assert key in handle.attrs, key
        assert handle.attrs["format_version"] == 1
        assert [handle["steps"][k].attrs["kind"] for k in ("0", "1")] == ["permutation", "butterfly"]
    assert original.structure == "BP" and original.meta["transform"] == "dft"
    assert original.meta["transform_options"] == {}
    again = bfly_cli.save(original, tmp_path / "copy.h5")
    np.testing.assert_array_equal(h5format.load(again).to_dense(), original.to_dense())


def test_refuses_overwrite_without_force_and_leaves_no_temp(tmp_path: Path) -> None:
    path, _ = _learned(tmp_path)
    before = path.read_bytes()
    f = h5format.load(path)
    with pytest.raises(BflyError, match="already exists; pass --force"):
        bfly_cli.save(f, path)
    assert path.read_bytes() == before
    bfly_cli.save(f, path, force=True)
    assert [p.name for p in tmp_path.iterdir()] == ["dft.h5"]


def test_interrupted_write_leaves_nothing(tmp_path: Path) -> None:
    def boom(tmp: str) -> None:
        Path(tmp).write_bytes(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        h5format.atomic_write(tmp_path / "out.h5", boom)
    assert list(tmp_path.iterdir()) == []


def _mutate(path: Path, fn) -> Path:
    with h5py.File(path, "r+") as handle:
        fn(handle)
    return path


@pytest.mark.parametrize(
    "mutation, message",
    [
        (lambda h: h.attrs.__setitem__("format_version", 2), "newer than this bfly reads"),
        (lambda h: h.attrs.__setitem__("format", "other"), "not a bfly factor file"),
        (lambda h: h.attrs.__delitem__("rmse"), "lacks required attributes: rmse"),
        (lambda h: h["steps/0/data"].__setitem__(0, 5), "not a permutation"),
        (lambda h: h["steps/1"].attrs.__setitem__("kind", "twiddle"), "unknown kind"),
        (lambda h: h.attrs.__setitem__("structure", "BPBP"), "does not match"),
        (lambda h: h["steps"].move("1", "5"), "must hold groups 0, 1"),
    ],
)
def test_load_rejects_damaged_files(tmp_path: Path, mutation, message: str) -> None:
    path, _ = _learned(tmp_path)
    with pytest.raises(FormatError, match=message):
        h5format.load(_mutate(path, mutation))


def test_nan_twiddle_rejected(tmp_path: Path) -> None:
    path, _ = _learned(tmp_path)

    def poison(handle) -> None:
        data = handle["steps/1/data"][()]
        data[0, 0, 0, 0] = np.nan
        handle["steps/1/data"][...] = data

    with pytest.raises(FormatError, match="NaN"):
        h5format.load(_mutate(path, poison))


def test_truncated_and_foreign_files(tmp_path: Path) -> None:
    path, _ = _learned(tmp_path)
    cut = tmp_path / "cut.h5"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(FormatError, match="not a readable HDF5 file"):
        h5format.load(cut)
    text = tmp_path / "notes.h5"
    text.write_text("hello")
    with pytest.raises(FormatError, match="not a readable HDF5 file"):
        h5format.load(text)
    with pytest.raises(BflyError, match="does not exist"):
        h5format.load(tmp_path / "missing.h5")
