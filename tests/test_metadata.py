"""The metadata key registry: every key round-trips with its Python type through the factor file
and every export, unknown keys too, and the documented attribute table agrees with the registry."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bfly_cli import export as ex
from bfly_cli import h5format, metadata
from bfly_cli.factors import Factors, Step

DOC = Path(__file__).resolve().parents[1] / "docs" / "file-format.md"
SAMPLES: dict[type, Any] = {str: "text", int: 3, float: 0.25, bool: True, dict: {"a": 1, "b": [1.5, "x"]},
                            list: [{"route": "bp", "status": "exact", "rel_error": 1e-16}, 2]}
WRITER_KEYS = ("format", "format_version", "n", "structure", "dtype")  # the writer sets these itself
UNKNOWN = {"future_dict": {"exact_to": 1e-7}, "future_list": [1, 2], "future_str": "plain", "future_float": 1.5,
           "future_int": 7, "future_bool": False, "future_bracket": "[not json"}


def _factors() -> Factors:
    meta = {name: SAMPLES[key.type] for name, key in metadata.KEYS.items() if name not in WRITER_KEYS}
    rng = np.random.default_rng(0)
    steps = [Step("permutation", rng.permutation(4)), Step("butterfly", rng.standard_normal((2, 2, 2, 2)))]
    return Factors(4, steps, {**meta, **UNKNOWN})


def _written(tmp_path: Path, fmt: str) -> Factors:
    """Through the factor file, then (as ``bfly export`` does) from the loaded file to ``fmt``."""
    loaded = h5format.load(h5format.save(_factors(), tmp_path / "f.h5"))
    return loaded if fmt == "h5" else ex.load_export(ex.export(loaded, tmp_path / f"f.{fmt}", fmt))


@pytest.mark.parametrize("fmt", ["h5", *ex.FORMATS])
@pytest.mark.parametrize("name", list(metadata.KEYS))
def test_every_registered_key_round_trips_with_its_type(tmp_path, fmt, name):
    back = _written(tmp_path, fmt).meta[name]
    key = metadata.KEYS[name]
    assert type(back) is key.type, (name, back)
    if name not in WRITER_KEYS:
        assert back == SAMPLES[key.type]


@pytest.mark.parametrize("fmt", ["h5", *ex.FORMATS])
def test_unknown_keys_round_trip(tmp_path, fmt):
    meta = _written(tmp_path, fmt).meta
    for name, value in UNKNOWN.items():
        assert meta[name] == value and type(meta[name]) is type(value), name


def test_encoded_keys_are_json_text_in_the_file(tmp_path):
    """The HDF5 attributes of dict/list keys are JSON strings (what an h5py-only reader sees)."""
    import h5py

    path = h5format.save(_factors(), tmp_path / "f.h5")
    with h5py.File(path) as handle:
        for name, key in metadata.KEYS.items():
            if key.encoded:
                assert isinstance(handle.attrs[name], str), name


def test_none_values_are_left_out():
    assert metadata.encode_attrs({"noise_floor": None, "n": 4}) == {"n": 4}
    assert metadata.encode_document({"noise_floor": None, "rmse": float("nan")}) == {"rmse": None}


def test_a_damaged_json_key_is_an_error():
    with pytest.raises(ValueError):
        metadata.decode({"auto_tried": "[{"})


def _documented_attributes() -> dict[str, str]:
    """``name -> type`` from the "Root attributes" table of docs/file-format.md."""
    section = DOC.read_text().split("## Root attributes", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^\| `(\w+)` \| ([^|]+?) \|", section, re.M))


_DOC_TYPES = {str: "string", int: "int", float: "float", bool: "bool"}


def test_documented_attributes_are_registered_with_their_types():
    documented = _documented_attributes()
    assert set(metadata.REQUIRED) <= set(documented)
    for name, text in documented.items():
        key = metadata.KEYS[name]
        expected = "string (JSON)" if key.encoded else _DOC_TYPES[key.type]
        assert text == expected, name
