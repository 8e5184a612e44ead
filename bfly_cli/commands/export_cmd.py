"""``bfly export``: write a factor file's steps as npz, pt (torch state dict), mat or json."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ._choices import ExportFormat
from ._common import emit_json, guarded, stdout_console


@guarded
def export(
    path: Path = typer.Argument(..., metavar="FILE", help="A factor file written by 'bfly learn'."),
    fmt: ExportFormat = typer.Option(..., "--format", "-f", help="The export format (layouts: docs/file-format.md)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", metavar="OUT", help="Output file [default: FILE with the format's extension]."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing output file."),
    force_large: bool = typer.Option(False, "--force-large", help="json only: allow N above 4096."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document on stdout."),
) -> None:
    """Export learned factors for numpy, torch, MATLAB/Octave or a text editor."""
    from .. import h5format, safe_write, read_guard
    from ..export import check_format, default_output, export as export_factors

    check_format(fmt)
    out = output or default_output(path, fmt)
    safe_write.check_writable(out, force, inputs=(path,))  # before reading: refuse early, touch nothing
    read_guard.check_readable(path)
    factors = h5format.load(path)
    written = export_factors(factors, out, fmt, force=force, force_large=force_large)
    size = written.stat().st_size
    if as_json:
        emit_json({"file": str(path), "format": fmt, "output": str(written), "bytes": size})
    else:
        stdout_console().print(f"exported {path} ({factors.structure}, N = {factors.n}) as {fmt} to {written} ({size:,} bytes)")


def register(app: typer.Typer) -> None:
    app.command("export")(export)
