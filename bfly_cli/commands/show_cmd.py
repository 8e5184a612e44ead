"""``bfly show``: a factor file's metadata, steps, parameter count and recorded errors."""

from __future__ import annotations

from pathlib import Path

import typer

from ._common import emit_json, guarded, stdout_console


@guarded
def show(
    path: Path = typer.Argument(..., metavar="FILE", help="A factor file written by 'bfly learn'."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document on stdout."),
) -> None:
    """Show what a factor file holds."""
    from .. import h5format, metadata, read_guard
    from ..report import summary_table

    read_guard.check_readable(path)
    factors = h5format.load(path)  # metadata decoded (bfly_cli.metadata): lists and dicts, not JSON text
    steps = [_step_row(k, s) for k, s in enumerate(factors.steps)]
    if as_json:
        emit_json({"file": str(path), "metadata": metadata.encode_document(factors.meta),
                   "params": factors.n_params(), "steps": steps})
        return
    from rich.table import Table

    console = stdout_console()
    console.print(summary_table({**factors.meta, "params": factors.n_params()}, str(path)))
    table = Table(title="steps (applied in order to x)")
    for col in ("#", "kind", "shape", "dtype", "parameters"):
        table.add_column(col)
    for row in steps:
        table.add_row(str(row["index"]), row["kind"], str(tuple(row["shape"])), row["dtype"], f"{row['params']:,}")
    console.print(table)
    console.print(f"format_version {factors.meta.get('format_version')}, bfly {factors.meta.get('bfly_version')}, "
                  f"created {factors.meta.get('created')}, command: {factors.meta.get('command')}")


def _step_row(index: int, step) -> dict:
    data = step.data
    return {"index": index, "kind": step.kind, "shape": list(data.shape) if data is not None else [],
            "dtype": str(data.dtype) if data is not None else "-", "params": step.n_params()}


def register(app: typer.Typer) -> None:
    app.command("show")(show)
