"""Hostile arguments and sweep records (#13 items 1, 7, 13): refused with one line and exit 2, before
any work, and nothing written outside ``-o``.

Shard records are built with ``json`` directly (never through the code under test), the way a
record from another machine, or an attacker, would arrive. Most refused options are given with a
target or file that does not exist: the range check runs while the arguments are parsed, so its
message must come first; without it the command would stop on the missing input instead.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import h5py
import numpy as np
import pytest
import typer

import bfly_cli
from bfly_cli import transforms
from bfly_cli import limits, sweep_records
from bfly_cli.cli import app

N = 8


def _refused(result, *needles: str) -> str:
    """Exit 2 with exactly one line on stderr, naming every needle; returns the line."""
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    for needle in needles:
        assert needle in result.stderr, (needle, result.stderr)
    return result.stderr


@pytest.fixture(scope="module")
def dft_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("hostile") / "dft-8.h5"
    bfly_cli.save(bfly_cli.factorize(transforms.build("dft", N)), path)
    return path


# ----------------------------------------------------------------------------- item 1: sweep --merge


def _shard(root: Path, records: dict[str, object]) -> Path:
    """A shard directory holding ``cells/NAME`` files: dicts as JSON, strings verbatim."""
    cells = root / "cells"
    cells.mkdir(parents=True)
    for name, content in records.items():
        (cells / name).write_text(content if isinstance(content, str) else json.dumps(content))
    return root


def _all_files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("name", ["../../escaped", "{abs}/escaped", "dft/../../../escaped", "..", "DFT", "dft-8", "", "a" * 65])
def test_merge_refuses_record_names_that_are_paths(bfly, tmp_path: Path, name: str) -> None:
    name = name.replace("{abs}", str(tmp_path))
    shard = _shard(tmp_path / "a" / "b" / "shard", {"x.json": {"transform": name, "n": N, "status": "failed"}})
    before = _all_files(tmp_path)
    out = tmp_path / "a" / "b" / "out"
    _refused(bfly("sweep", "--merge", shard, "-o", out), "x.json", "'transform'")
    assert _all_files(tmp_path) == before and not out.exists()


@pytest.mark.parametrize("field, value", [
    ("n", "8"), ("n", 8.0), ("n", 12), ("n", 2**40), ("n", True), ("n", -8), ("status", "done"),
    ("rel_error", "abc"), ("rel_error", -1.0), ("rmse", [1]), ("params", 10**30), ("params", -1), ("params", 1.5),
    ("exact", "yes"), ("solver", 5), ("bench", [1]), ("bench", {"dense_us": "x"}), ("error", "x" * 70_000),
])
def test_merge_refuses_wrongly_typed_fields(bfly, tmp_path: Path, field: str, value: object) -> None:
    record = {"transform": "dft", "n": N, "status": "ok", "solver": "auto", "rmse": 1e-16, "rel_error": 1e-16}
    record[field] = value
    shard = _shard(tmp_path / "shard", {f"dft-{N}.json": record})
    line = _refused(bfly("sweep", "--merge", shard, "-o", tmp_path / "out"), f"dft-{N}.json", f"'{field}")
    assert "Traceback" not in line and not (tmp_path / "out").exists()


@pytest.mark.parametrize("text", [
    '{"transform": "dft", "n": 8, "status": "ok", "rel_error": NaN}',
    '{"transform": "dft", "n": 8, "status": "ok", "rmse": Infinity}',
    '{"transform": "dft", "n": 8, "status": "ok", "rmse": 1e400}',
    '{"transform": "dft", "n": 8, "status": "ok", "params": ' + "9" * 5000 + "}",
    '{"transform": "dft", "n": 8, "status": "ok", "bench": ' + "[" * 100_000 + "]" * 100_000 + "}",
    '["dft", 8]', "{not json", '{"transform": "dft", "status": "ok"}', "\xff\xfe",
    '{"transform": "dft", "n": 8, "status": "ok"}', '{"transform": "dft", "n": 8, "status": "ok", "rmse": 0, "rel_error": null}',
])
def test_merge_refuses_nan_huge_and_malformed_records(bfly, tmp_path: Path, text: str) -> None:
    shard = _shard(tmp_path / "shard", {f"dft-{N}.json": text})
    _refused(bfly("sweep", "--merge", shard, "-o", tmp_path / "out"), f"dft-{N}.json")
    assert not (tmp_path / "out").exists()


def test_merge_refuses_a_record_stored_under_another_cells_name(bfly, tmp_path: Path) -> None:
    shard = _shard(tmp_path / "shard", {"dft-16.json": {"transform": "dft", "n": N, "status": "failed"}})
    _refused(bfly("sweep", "--merge", shard, "-o", tmp_path / "out"), "dft-16.json", f"dft-{N}")


def test_merge_refuses_oversized_linked_and_special_record_files(bfly, tmp_path: Path) -> None:
    good = {"transform": "dft", "n": N, "status": "failed", "error": "x"}
    big = _shard(tmp_path / "big", {f"dft-{N}.json": json.dumps(good) + " " * (1 << 20)})
    _refused(bfly("sweep", "--merge", big, "-o", tmp_path / "out"), "bytes")
    (tmp_path / "elsewhere.json").write_text(json.dumps(good))
    linked = _shard(tmp_path / "linked", {})
    (linked / "cells" / f"dft-{N}.json").symlink_to(tmp_path / "elsewhere.json")
    _refused(bfly("sweep", "--merge", linked, "-o", tmp_path / "out"), f"dft-{N}.json")
    fifo = _shard(tmp_path / "fifo", {})
    os.mkfifo(fifo / "cells" / f"dft-{N}.json")  # reading it would block forever
    _refused(bfly("sweep", "--merge", fifo, "-o", tmp_path / "out"), "regular file")


def test_merge_never_writes_through_a_link_planted_in_the_output(bfly, tmp_path: Path) -> None:
    victim = tmp_path / "victim.json"
    victim.write_text("keep")
    out = tmp_path / "out"
    (out / "cells").mkdir(parents=True)
    (out / "cells" / f"dft-{N}.json").symlink_to(victim)
    shard = _shard(tmp_path / "shard", {f"dft-{N}.json": {"transform": "dft", "n": N, "status": "failed", "error": "x"}})
    _refused(bfly("sweep", "--merge", shard, "-o", out), "outside")
    assert victim.read_text() == "keep"


def test_merge_copies_checked_fields_only_and_no_linked_factor_file(bfly, tmp_path: Path) -> None:
    record = {"transform": "dft", "n": N, "status": "ok", "solver": "auto", "structure": "BP", "params": 96,
              "rmse": 1e-16, "rel_error": 2e-16, "exact": True, "seconds": 0.01, "evil": {"nested": [1, 2]},
              "bench": {"butterfly_us": 1.0, "dense_us": 2.0, "fft_us": None, "extra": "dropped"}}
    shard = _shard(tmp_path / "shard", {f"dft-{N}.json": record})
    secret = tmp_path / "secret.txt"
    secret.write_text("private")
    (shard / "cells" / f"dft-{N}.h5").symlink_to(secret)
    out = tmp_path / "out"
    result = bfly("sweep", "--merge", shard, "-o", out, "--quiet")
    assert result.exit_code == 0, result.stderr
    merged = json.loads((out / "cells" / f"dft-{N}.json").read_text())
    assert "evil" not in merged and "extra" not in merged["bench"] and merged["rel_error"] == 2e-16
    assert not (out / "cells" / f"dft-{N}.h5").exists()


def test_own_output_skips_a_bad_record_so_the_cell_runs_again(tmp_path: Path) -> None:
    cells = tmp_path / "cells"
    cells.mkdir()
    (cells / f"dft-{N}.json").write_text(json.dumps({"transform": "dft", "n": N, "status": "ok", "rel_error": "abc"}))
    (cells / f"dft-{2 * N}.json").write_text(json.dumps({"transform": "dft", "n": 2 * N, "status": "ok", "rmse": 0, "rel_error": 0}))
    assert list(sweep_records.load_records(tmp_path)) == [f"dft-{2 * N}"]
    with pytest.raises(bfly_cli.BflyError, match="rel_error"):
        sweep_records.load_records(tmp_path, strict=True)


def test_every_registered_transform_name_is_a_safe_record_name() -> None:
    assert all(sweep_records.NAME.fullmatch(name) for name in transforms.names())


# ----------------------------------------------------------------------------- items 7 and 13: numeric options


def _numeric_options() -> list[tuple[str, str, object]]:
    """(command, flag, typer OptionInfo) of every int or float option of every command, read from
    the command functions' signatures (what typer builds the parser from)."""
    import inspect
    import typing

    found = []
    for command in app.registered_commands:
        function = inspect.unwrap(command.callback)
        hints = typing.get_type_hints(function)
        for name, parameter in inspect.signature(function).parameters.items():
            info = parameter.default
            kinds = set(typing.get_args(hints[name])) | {hints[name]}
            if isinstance(info, typer.models.OptionInfo) and kinds & {int, float}:
                found.append((command.name, max(info.param_decls, key=len), info))
    return found


def test_every_numeric_option_has_a_range_and_a_check() -> None:
    options = _numeric_options()
    assert len(options) >= 15  # learn 7, analyze 2, bench 2, apply 1, sweep 2, verify 1
    for command, flag, info in options:
        assert flag in limits.RANGES and info.callback is not None, (command, flag)
        assert "Valid: " + limits.RANGES[flag].text() in (info.help or ""), (command, flag)


@pytest.mark.parametrize("args, flag", [
    (("learn", "nosuch", "--seed", str(2**70)), "--seed"),
    (("learn", "nosuch", "--seed", "-1"), "--seed"),
    (("analyze", "nosuch", "--seed", str(2**63)), "--seed"),
    (("learn", "nosuch", "--n", str(2**62)), "GiB"),
    (("analyze", "nosuch", "--n", "12"), "power of two"),
    (("learn", "nosuch", "--tol", "nan"), "--tol"),
    (("learn", "nosuch", "--tol", "inf"), "--tol"),
    (("learn", "nosuch", "--tol", "-1e-3"), "--tol"),
    (("verify", "nosuch.h5", "--tol", "nan"), "--tol"),
    (("verify", "nosuch.h5", "--tol", "inf"), "--tol"),
    (("learn", "nosuch", "--solver", "gradient", "--steps", "10000000"), "--steps"),
    (("learn", "nosuch", "--solver", "gradient", "--restarts", str(2**40)), "--restarts"),
    (("learn", "nosuch", "--solver", "gradient", "--lr", "inf"), "--lr"),
    (("learn", "nosuch", "--solver", "gradient", "--lr", "nan"), "--lr"),
    (("learn", "nosuch", "--budget", "9"), "--budget"),
    (("bench", "nosuch.h5", "--threads", str(2**31)), "--threads"),
    (("bench", "nosuch.h5", "--repeat", str(2**63)), "--repeat"),
    (("apply", "nosuch.h5", "x.npy", "-o", "y.npy", "--threads", str(2**31)), "--threads"),
    (("sweep", "--transforms", "nosuch", "-o", "{out}", "--jobs", str(2**64)), "--jobs"),
    (("sweep", "--transforms", "nosuch", "-o", "{out}", "--timeout", "nan"), "--timeout"),
    (("sweep", "--transforms", "nosuch", "-o", "{out}", "--timeout", "inf"), "--timeout"),
    (("sweep", "--transforms", "nosuch", "-o", "{out}", "--timeout", "-1"), "--timeout"),
])
def test_out_of_range_values_are_refused_while_parsing(bfly, tmp_path: Path, args: tuple[str, ...], flag: str) -> None:
    out = tmp_path / "out"
    _refused(bfly(*(a.replace("{out}", str(out)) for a in args)), flag)
    assert not out.exists()


def test_seed_too_large_for_the_file_is_refused_before_learning(bfly, tmp_path: Path) -> None:
    out = tmp_path / "r.h5"
    _refused(bfly("learn", "randn", "--n", N, "--seed", 2**70, "-o", out), "--seed", str(2**63 - 1))
    assert not out.exists()
    result = bfly("learn", "randn", "--n", N, "--seed", 2**63 - 1, "-o", out, "--quiet")
    assert result.exit_code == 0, result.stderr
    with h5py.File(out, "r") as handle:
        assert int(handle.attrs["seed"]) == 2**63 - 1


@pytest.mark.parametrize("tol", ["nan", "inf", "-inf", "-1"])
def test_learn_refuses_a_tolerance_that_disables_the_check(bfly, tmp_path: Path, tol: str) -> None:
    out = tmp_path / "d.h5"
    _refused(bfly("learn", "dft", "--n", N, "--tol", tol, "-o", out), "--tol")
    assert not out.exists()


@pytest.mark.parametrize("tol", ["nan", "inf", "-1"])
def test_verify_refuses_a_tolerance_that_disables_the_check(bfly, dft_file: Path, tol: str) -> None:
    _refused(bfly("verify", dft_file, "--tol", tol), "--tol")


def test_threads_past_a_c_int_are_refused_and_the_largest_allowed_works(bfly, dft_file: Path, tmp_path: Path) -> None:
    x = np.random.default_rng(0).standard_normal((3, N))
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "y.npy"
    _refused(bfly("apply", dft_file, tmp_path / "x.npy", "-o", out, "--threads", 2**31), "--threads", "1024")
    assert not out.exists()
    _refused(bfly("bench", dft_file, "--threads", 2**31, "--batch", "1", "--repeat", "1"), "--threads")
    result = bfly("apply", dft_file, tmp_path / "x.npy", "-o", out, "--threads", limits.MAX_THREADS)
    assert result.exit_code == 0, result.stderr
    expected = x @ np.fft.fft(np.eye(N), norm="ortho").T  # y = M x per row, M the unitary DFT by numpy
    assert np.allclose(np.load(out), expected, atol=1e-12)


@pytest.mark.parametrize("text", ["8..2097152", "8,4194304", f"8,{2**70}"])
def test_sweep_sizes_above_the_largest_n_are_refused(bfly, tmp_path: Path, text: str) -> None:
    _refused(bfly("sweep", "--transforms", "dft", "--sizes", text, "-o", tmp_path / "out"), "--sizes")
    assert not (tmp_path / "out").exists()


def test_sweep_shard_count_is_bounded(bfly, tmp_path: Path) -> None:
    _refused(bfly("sweep", "--transforms", "dft", "--sizes", "8", "--shard", f"1/{10**30}", "-o", tmp_path / "out"), "--shard")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("flag, value", [("--tol", math.nan), ("--tol", math.inf), ("--lr", 0.0), ("--seed", 2**63),
                                         ("--seed", True), ("--threads", 1.0), ("--timeout", 1e7), ("--timeout", "600"),
                                         ("--jobs", 0)])
def test_library_check_refuses_what_the_options_refuse(flag: str, value: object) -> None:
    with pytest.raises(bfly_cli.BflyError, match=flag):
        limits.check(flag, value)


def test_docs_state_every_range() -> None:
    text = (Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text()
    section = text[text.index("### Arguments and sweep records"):]
    for flag, spec in limits.RANGES.items():
        assert f"`{flag}`" in section and spec.text() in section, flag


@pytest.mark.parametrize("args", [("learn", "nosuch", "--tol", "nan", "--json"), ("verify", "nosuch.h5", "--json", "--tol", "inf"),
                                  ("bench", "nosuch.h5", "--threads", "0", "--json")])
def test_range_error_under_json_is_also_a_json_document(bfly, args: tuple[str, ...]) -> None:
    result = bfly(*args)
    _refused(result, "out of range")
    document = json.loads(result.stdout)
    assert document["exit_code"] == 2 and "out of range" in document["error"]
