"""``bfly sweep``: learn every transform x size of a grid, in parallel, resumably; write the report."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, List, Optional

import typer

from ._choices import Solver
from ._common import emit_json, guarded, stdout_console
from ._options import in_range, range_help


@guarded
def sweep(
    dirs: Optional[List[Path]] = typer.Argument(None, metavar="DIR", help="With --merge: the shard directories to join."),
    output: Path = typer.Option(..., "-o", "--output", metavar="DIR", help="Output directory (created; re-using it resumes)."),
    transforms: Optional[str] = typer.Option(None, "--transforms", metavar="NAMES", help="Comma-separated names [default: the paper's eight]."),
    sizes: str = typer.Option("8..1024", "--sizes", metavar="SIZES", help="LOW..HIGH (powers of two in range) or a list 8,16,64."),
    solver: Optional[Solver] = typer.Option(None, "--solver", help="Solver for every cell [default: auto if available, else hierarchical]."),
    bench: bool = typer.Option(False, "--bench", help="Also time each cell (butterfly, dense GEMV, fast library)."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", metavar="J", callback=in_range("--jobs"), help=range_help("--jobs", "Cells run at once, one process each [default: number of cores].")),
    shard: Optional[str] = typer.Option(None, "--shard", metavar="I/K", help="Run only slice I of K (1-based), e.g. 2/4."),
    timeout: float = typer.Option(600.0, "--timeout", metavar="SECONDS", callback=in_range("--timeout"), help=range_help("--timeout", "Seconds per cell before it is killed and recorded as timeout.")),
    merge: bool = typer.Option(False, "--merge", help="Join the cells of shard directories DIRS into -o, then report."),
    as_json: bool = typer.Option(False, "--json", is_eager=True, help="Print one JSON document on stdout."),  # eager: range errors see it
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress and no summary on success."),
) -> None:
    """Learn (and with --bench time) a grid of transforms x sizes; write results.csv, report.md, PNGs (exit 1 if a cell failed)."""
    from .. import sweep as lib
    from ..errors import BflyError, CheckFailed

    if merge:
        if not dirs:
            raise BflyError("--merge needs the shard directories: bfly sweep --merge DIR1 DIR2 ... -o OUT")
        records = lib.merge(list(dirs), output)
        expected = len(records)
    else:
        if dirs:
            raise BflyError(f"unexpected argument {str(dirs[0])!r}; directories are only taken with --merge (use -o DIR for the output)")
        options = lib.make_options(output, transforms, sizes, solver, bench, jobs, shard, timeout)
        records = _run(lib, options, quiet or as_json)
        expected = len(lib.shard_cells(lib.grid(options.transforms, options.sizes), options.shard))
    summaries = lib.write_summaries(output, records)
    _report(records, summaries, output, as_json, quiet)
    bad = [r for r in records if r.get("status") != "ok"]
    if bad or len(records) < expected:
        raise CheckFailed(f"{len(bad)} of {expected} cells failed or timed out; see {output / 'report.md'}")


def _run(lib, options, quiet: bool) -> list[dict[str, Any]]:
    """Run the sweep with a progress bar on a terminal, or one line per cell on stderr otherwise."""
    mine, todo = lib.pending_cells(options)
    if not quiet and len(todo) < len(mine):
        print(f"{len(mine) - len(todo)} of {len(mine)} cells already done in {options.out_dir}; running {len(todo)}", file=sys.stderr)
    if quiet or not todo:
        return lib.run_sweep(options)
    if not sys.stderr.isatty():
        return lib.run_sweep(options, on_done=_print_cell)
    return _run_with_bar(lib, options, len(todo))


def _print_cell(cell, record: dict[str, Any]) -> None:
    detail = f"rel_error {record['rel_error']:.1e}" if record.get("status") == "ok" else record.get("error")
    print(f"{cell.key}: {record.get('status')} ({detail}, {record.get('wall_seconds', 0):.1f} s)", file=sys.stderr)


def _run_with_bar(lib, options, total: int) -> list[dict[str, Any]]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    running: list[str] = []
    columns = (TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("{task.description}"))
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("", total=total)

        def started(cell) -> None:
            running.append(cell.key)
            progress.update(task, description=" ".join(running))

        def done(cell, record: dict[str, Any]) -> None:
            running.remove(cell.key)
            if record.get("status") != "ok":
                progress.console.print(f"{cell.key}: {record.get('status')}: {record.get('error')}")
            progress.update(task, advance=1, description=" ".join(running))

        return lib.run_sweep(options, on_start=started, on_done=done)


def _report(records: list[dict[str, Any]], summaries, output: Path, as_json: bool, quiet: bool) -> None:
    from .. import plots
    from ..sweep_report import csv_row, has_bench, summary_counts

    counts = summary_counts(records)
    if as_json:
        bench = has_bench(records)
        emit_json({"output": str(output), "counts": counts, "files": [str(f) for f in summaries.files],
                   "note": summaries.note, "cells": [csv_row(r, bench) for r in records]})
        return
    if quiet:
        return
    console = stdout_console()
    if summaries.note and records and not plots.have_matplotlib():
        console.print(plots.terminal_heatmap(records))
        console.print(plots.INSTALL_HINT, markup=False)
    done = ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "none"
    console.print(f"cells: {done}", markup=False)
    console.print("wrote " + ", ".join(str(f) for f in summaries.files), markup=False)


def register(app: typer.Typer) -> None:
    app.command("sweep")(sweep)
