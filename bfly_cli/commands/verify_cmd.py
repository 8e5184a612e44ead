"""``bfly verify``: rebuild a factor file's target and check that its recorded errors reproduce."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from ._common import emit_json, guarded, progress_status, stdout_console
from ._options import in_range, range_help


@guarded
def verify(
    path: Path = typer.Argument(..., metavar="FILE", help="A factor file written by 'bfly learn'."),
    tol: Optional[float] = typer.Option(None, "--tol", metavar="TOL", callback=in_range("--tol"), help=range_help("--tol", "Also fail (exit 1) when rel_error is above this.")),
    source: Optional[Path] = typer.Option(None, "--source", metavar="MATRIX", help="The source matrix file, if it moved since learning."),
    as_json: bool = typer.Option(False, "--json", is_eager=True, help="Print one JSON document on stdout."),  # eager: range errors see it
) -> None:
    """Recompute the errors against the rebuilt target (exit 1 when they do not reproduce)."""
    from ..errors import CheckFailed
    from .. import read_guard
    from ..verification import verify as verify_file

    with progress_status(f"verifying {path}", as_json):
        read_guard.check_readable(path)
        doc = verify_file(path, tol=tol, source=source)
    if as_json:
        emit_json(doc)
    else:
        _print_report(doc)
    if not doc["passed"]:
        raise CheckFailed(f"{path}: " + "; ".join(doc["reasons"]))


def _print_report(doc: dict[str, Any]) -> None:
    """Recorded vs recomputed per measure, then the verdict."""
    from rich.table import Table

    what = doc["source"] or f"{doc['transform']} {doc['transform_options'] or ''}".strip()
    table = Table(title=f"{doc['file']}: {doc['structure']} N={doc['n']} {doc['dtype']} vs {what}")
    for col in ("measure", "recorded", "recomputed", "allowed difference"):
        table.add_column(col, justify="left" if col == "measure" else "right")
    for key, value in doc["recomputed"].items():
        recorded = doc["recorded"].get(key)
        allowed = doc["allowed_difference"].get(key)
        table.add_row(key, _sci(recorded), _sci(value), _sci(allowed))
    console = stdout_console()
    console.print(table)
    claims = [key for key in doc["checked"] if key not in doc["recomputed"]]
    console.print(f"also checked: {', '.join(claims)}" if claims else "no other claims recorded to check")
    console.print("verified: the recorded errors and claims reproduce" if doc["passed"] else "FAILED: " + "; ".join(doc["reasons"]))


def _sci(value: Any) -> str:
    return "-" if not isinstance(value, (int, float)) else f"{float(value):.3e}"


def register(app: typer.Typer) -> None:
    app.command("verify")(verify)
