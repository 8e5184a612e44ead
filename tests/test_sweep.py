"""``bfly sweep``: option parsing, sharding, an end-to-end sharded sweep merged, resume, failures.

The end-to-end tests run real worker processes on a tiny grid (dft and hadamard, N = 8 and 16:
both exact under every solver, so the numbers themselves are checked, not just the plumbing).
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

from bfly_cli import plots, sweep
from bfly_cli.errors import BflyError

TINY = ("--transforms", "dft,hadamard", "--sizes", "8,16", "--jobs", "2")


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def record_bytes(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "cells").glob("*.json"))}


# ----------------------------------------------------------------------------- parsing


@pytest.mark.parametrize("text, sizes", [
    ("8..1024", (8, 16, 32, 64, 128, 256, 512, 1024)),
    ("8..8", (8,)),
    ("64,8,16", (8, 16, 64)),
    ("16, 8", (8, 16)),
])
def test_parse_sizes(text: str, sizes: tuple[int, ...]) -> None:
    assert sweep.parse_sizes(text) == sizes


@pytest.mark.parametrize("text, message", [
    ("8..12", "not a power of two"),
    ("1024..8", "range is empty"),
    ("8,x", "not a whole number"),
    ("", "empty"),
    ("8,24", "not a power of two"),
])
def test_parse_sizes_rejects(text: str, message: str) -> None:
    with pytest.raises(BflyError, match=message):
        sweep.parse_sizes(text)


@pytest.mark.parametrize("text, shard", [(None, (1, 1)), ("1/2", (1, 2)), ("3/3", (3, 3))])
def test_parse_shard(text: str | None, shard: tuple[int, int]) -> None:
    assert sweep.parse_shard(text) == shard


@pytest.mark.parametrize("text", ["0/2", "3/2", "1/0", "a/b", "2"])
def test_parse_shard_rejects(text: str) -> None:
    with pytest.raises(BflyError, match="--shard"):
        sweep.parse_shard(text)


def test_unknown_transform_suggests_the_closest(bfly, tmp_path: Path) -> None:
    result = bfly("sweep", "--transforms", "dft,hadamrd", "--sizes", "8", "-o", tmp_path / "out")
    assert result.exit_code == 2
    assert "did you mean 'hadamard'" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_default_solver_is_known() -> None:
    from bfly_cli.solvers import SOLVERS

    assert sweep.default_solver() in SOLVERS
    assert sweep.default_solver() == ("auto" if "auto" in SOLVERS else "hierarchical")


# ----------------------------------------------------------------------------- the grid and shards


@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_shards_partition_the_grid(count: int) -> None:
    cells = sweep.grid(sweep.PAPER_TRANSFORMS, (8, 16, 32, 64, 128))
    slices = [sweep.shard_cells(cells, (i, count)) for i in range(1, count + 1)]
    flat = [cell for part in slices for cell in part]
    assert sorted(flat) == sorted(cells) and len(flat) == len(set(flat))
    assert max(map(len, slices)) - min(map(len, slices)) <= 1


def test_grid_order_is_size_first() -> None:
    cells = sweep.grid(("dft", "dct"), (16, 8))
    assert [c.key for c in cells] == ["dft-8", "dct-8", "dft-16", "dct-16"]


# ----------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def sharded(tmp_path_factory) -> dict[str, Path]:
    """Two shards of the tiny grid run through the CLI, then merged."""
    from typer.testing import CliRunner

    from bfly_cli.cli import app

    root = tmp_path_factory.mktemp("sweep")
    runner = CliRunner()
    outs = {}
    for index in (1, 2):
        out = root / f"shard{index}"
        result = runner.invoke(app, ["sweep", *TINY, "--shard", f"{index}/2", "-o", str(out)], catch_exceptions=False)
        assert result.exit_code == 0, result.stderr
        outs[f"shard{index}"] = out
    merged = root / "merged"
    result = runner.invoke(app, ["sweep", "--merge", str(outs["shard1"]), str(outs["shard2"]), "-o", str(merged)],
                           catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    outs["merged"] = merged
    return outs


def test_each_shard_ran_half_the_cells(sharded: dict[str, Path]) -> None:
    one = {r["transform"] + "-" + r["n"] for r in read_csv(sharded["shard1"] / "results.csv")}
    two = {r["transform"] + "-" + r["n"] for r in read_csv(sharded["shard2"] / "results.csv")}
    assert len(one) == len(two) == 2 and not one & two
    assert one | two == {"dft-8", "hadamard-8", "dft-16", "hadamard-16"}


def test_merged_results_are_exact(sharded: dict[str, Path]) -> None:
    rows = read_csv(sharded["merged"] / "results.csv")
    assert [(r["transform"], int(r["n"])) for r in rows] == [("dft", 8), ("dft", 16), ("hadamard", 8), ("hadamard", 16)]
    for row in rows:
        assert row["status"] == "ok"
        assert float(row["rel_error"]) <= 1e-12
        assert int(row["params"]) > 0 and row["structure"]
        assert float(row["paper_rmse"]) > 0
    for name in ("dft-8", "hadamard-16"):
        assert (sharded["merged"] / "cells" / f"{name}.h5").is_file()


def test_factor_files_of_a_sweep_load(sharded: dict[str, Path]) -> None:
    import numpy as np
    from bfly_cli import transforms

    from bfly_cli.h5format import load

    factors = load(sharded["merged"] / "cells" / "dft-16.h5")
    assert np.allclose(factors.to_dense(), transforms.build("dft", 16), atol=1e-12)


def test_report_puts_the_paper_beside(sharded: dict[str, Path]) -> None:
    report = (sharded["merged"] / "report.md").read_text()
    assert "| dft | bfly |" in report and "| | paper | 3.1e-06 | 4.6e-06 |" in report
    assert "| hadamard | BP |" in report and "| yes |" in report
    assert "cells: 4 (4 ok)" in report
    assert "| dft | BP | yes |" in report and "| yes | 2/2 |" in report  # the summary: exact, beats the paper


def test_rerun_skips_done_cells(bfly, sharded: dict[str, Path]) -> None:
    out = sharded["shard1"]
    before = record_bytes(out)
    result = bfly("sweep", *TINY, "--shard", "1/2", "-o", out)
    assert result.exit_code == 0, result.stderr
    assert "2 of 2 cells already done" in result.stderr
    assert record_bytes(out) == before


def test_resume_runs_only_missing_cells(bfly, sharded: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    out = tmp_path / "partial"
    shutil.copytree(sharded["merged"], out)
    (out / "cells" / "hadamard-16.json").unlink()  # as if Ctrl-C came before this cell finished
    before = record_bytes(out)
    result = bfly("sweep", *TINY, "-o", out)
    assert result.exit_code == 0, result.stderr
    assert "3 of 4 cells already done" in result.stderr
    after = record_bytes(out)
    assert set(after) == set(before) | {"hadamard-16.json"}
    assert all(after[name] == data for name, data in before.items())
    assert len(read_csv(out / "results.csv")) == 4


def test_merge_needs_sweep_directories(bfly, tmp_path: Path) -> None:
    result = bfly("sweep", "--merge", tmp_path, "-o", tmp_path / "m")
    assert result.exit_code == 2 and "no cells/ directory" in result.stderr


# ----------------------------------------------------------------------------- failures


def test_failing_cell_is_recorded_and_the_sweep_goes_on(tmp_path: Path) -> None:
    options = sweep.SweepOptions(out_dir=tmp_path / "out", transforms=("dft", "no_such_transform"), sizes=(8,), jobs=2)
    records = {r["transform"]: r for r in sweep.run_sweep(options)}
    assert records["dft"]["status"] == "ok" and records["dft"]["rel_error"] <= 1e-12
    assert records["no_such_transform"]["status"] == "failed"
    assert "unknown transform" in records["no_such_transform"]["error"]
    summaries = sweep.write_summaries(options.out_dir, list(records.values()))
    report = (options.out_dir / "report.md").read_text()
    assert "`no_such_transform-8` failed: unknown transform" in report
    assert options.out_dir / "results.csv" in summaries.files


def test_a_name_that_cannot_name_a_file_is_refused_before_any_work(tmp_path: Path) -> None:
    options = sweep.SweepOptions(out_dir=tmp_path / "out", transforms=("dft", "../escape"), sizes=(8,), jobs=1)
    with pytest.raises(BflyError, match="cannot name a cell file"):
        sweep.run_sweep(options)
    assert not (tmp_path / "out").exists() and not (tmp_path / "escape-8.json").exists()


def test_failed_cells_are_retried(tmp_path: Path) -> None:
    out = tmp_path / "out"
    sweep.write_record(out, {"transform": "dft", "n": 8, "solver": sweep.default_solver(), "status": "failed", "error": "x"})
    options = sweep.SweepOptions(out_dir=out, transforms=("dft",), sizes=(8,), solver=sweep.default_solver(), jobs=1)
    assert [c.key for c in sweep.pending_cells(options)[1]] == ["dft-8"]
    (record,) = sweep.run_sweep(options)
    assert record["status"] == "ok"


def test_timeout_is_recorded_and_exit_code_is_1(bfly, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = bfly("sweep", "--transforms", "dft", "--sizes", "8,16", "--timeout", "0", "-o", out)
    assert result.exit_code == 1
    assert "2 of 2 cells failed or timed out" in result.stderr
    rows = read_csv(out / "results.csv")
    assert [r["status"] for r in rows] == ["timeout", "timeout"]
    assert "--timeout 0" in rows[0]["error"]


# ----------------------------------------------------------------------------- figures


def test_without_matplotlib_the_report_says_how_to_get_pngs(sharded: dict[str, Path], tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(plots, "have_matplotlib", lambda: False)
    records = list(sweep.load_records(sharded["merged"]).values())
    summaries = sweep.write_summaries(tmp_path, records)
    assert not list(tmp_path.glob("*.png"))
    assert "pip install 'bfly[plot]'" in summaries.note
    assert "pip install 'bfly[plot]'" in (tmp_path / "report.md").read_text()


def test_terminal_heatmap_shows_bfly_and_paper(sharded: dict[str, Path]) -> None:
    from rich.console import Console

    records = list(sweep.load_records(sharded["merged"]).values())
    console = Console(record=True, width=120, color_system="truecolor", file=open(os.devnull, "w"))
    console.print(plots.terminal_heatmap(records))
    text = console.export_text(clear=False)
    assert "bfly" in text and "paper" in text and "3e-06" in text
    assert "\x1b[" in console.export_text(styles=True)


def test_pngs_are_written(sharded: dict[str, Path]) -> None:
    pytest.importorskip("matplotlib")
    png = sharded["merged"] / "rmse_heatmap.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "![rmse_heatmap](rmse_heatmap.png)" in (sharded["merged"] / "report.md").read_text()


def test_bench_adds_timings(bfly, tmp_path: Path) -> None:
    out = tmp_path / "bench"
    result = bfly("sweep", "--transforms", "dft", "--sizes", "8", "--jobs", "1", "--bench", "-o", out)
    assert result.exit_code == 0, result.stderr
    (row,) = read_csv(out / "results.csv")
    for key in ("butterfly_us", "dense_us", "fft_us", "dense_over_butterfly", "butterfly_over_fft"):
        assert float(row[key]) > 0, key
    assert row["fft_name"].startswith(("scipy.fft", "FFTW"))  # FFTW when pyfftw is installed (#15)
    assert "## Speed" in (out / "report.md").read_text()
    if plots.have_matplotlib():
        assert (out / "speed.png").read_bytes()[:4] == b"\x89PNG"


def test_output_that_is_a_file_is_refused_before_work(bfly, tmp_path: Path) -> None:
    target = tmp_path / "a-file"
    target.write_text("not a directory")
    result = bfly("sweep", "--transforms", "dft", "--sizes", "8", "-o", target)
    assert result.exit_code == 2 and "is a file" in result.stderr
    assert target.read_text() == "not a directory"
