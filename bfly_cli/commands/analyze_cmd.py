"""``bfly analyze``: per-level distance from rank-1 / rank-2 block structure, and the verdict."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ._choices import Norm
from ._common import emit_json, guarded, progress_status, stdout_console
from ._options import in_range, range_help


@guarded
def analyze(
    target: str = typer.Argument(..., metavar="TARGET", help="Transform name (see 'bfly list') or a .npy/.npz/.h5 matrix file."),
    n: Optional[int] = typer.Option(None, "--n", "-n", metavar="N", callback=in_range("--n"), help=range_help("--n", "Size N, a power of two (inferred for a matrix file).")),
    seed: Optional[int] = typer.Option(None, "--seed", metavar="SEED", callback=in_range("--seed"), help=range_help("--seed", "Seed for random targets (convolution, randn) [default: 0].")),
    norm: Optional[Norm] = typer.Option(None, "--norm", help="dft/idft/dct/dst: backward, ortho or forward (scipy.fft's meanings) or paper (the seed paper's scaling) [default: ortho for dft/idft, paper for dct/dst; see 'bfly list']."),
    kind: Optional[int] = typer.Option(None, "--type", metavar="2|3|4", callback=in_range("--type"), help=range_help("--type", "dct/dst only: type 2, 3 or 4 (scipy.fft's definitions) [default: 2].")),
    filter_path: Optional[Path] = typer.Option(None, "--filter", metavar="FILE.npy", help="convolution only: the filter as a 1-D .npy file."),
    as_json: bool = typer.Option(False, "--json", is_eager=True, help="Print one JSON document on stdout."),  # eager: range errors see it
) -> None:
    """Report how far the matrix is from B.P and rank-2 structure, and which structure 'learn' will pick."""
    from ..verbs import analyze as run_analysis

    options = {"seed": seed, "norm": norm, "type": kind, "filter": filter_path}
    with progress_status(f"analyzing {target}" + (f" N={n}" if n else ""), as_json):
        report = run_analysis(target, n, **options)
    if as_json:
        emit_json(report)
    else:
        _print(report)


def _print(report: dict) -> None:
    from rich.table import Table

    table = Table(title=f"bfly analyze: {report['transform']} (N = {report['n']})")
    for col in ("level", "block", "beyond rank 1 (B.P order)", "beyond rank 2 (rank-2 order)"):
        table.add_column(col, justify="right")
    for row in report["levels"]:
        tail2 = "n/a (complex)" if row["rank2_tail"] is None else f"{row['rank2_tail']:.2e}"
        table.add_row(str(row["level"]), f"{row['block'][0]} x {row['block'][1]}", f"{row['rank1_tail']:.2e}", tail2)
    console = stdout_console()
    console.print(table)
    for rec in report["tried"]:
        detail = rec.get("reason") or f"rel_error {rec['rel_error']:.2e}, {rec['params']:,} parameters"
        console.print(f"  route {rec['route']}: {rec['status']} ({detail})", markup=False)
    console.print(f"verdict: {report['verdict']}", markup=False)


def register(app: typer.Typer) -> None:
    app.command("analyze")(analyze)
