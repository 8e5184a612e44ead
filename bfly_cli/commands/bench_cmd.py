"""``bfly bench``: time a factor file against dense multiplication and the best fast library."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from ._choices import complete_device
from ._common import emit_json, guarded, progress_status, stdout_console
from ._options import in_range, range_help

_COLUMNS = (("butterfly", "bfly µs"), ("torch", "torch µs"), ("dense", "dense µs"), ("fast", "fast µs"))


@guarded
def bench(
    path: Path = typer.Argument(..., metavar="FILE", help="A factor file written by 'bfly learn'."),
    batch: str = typer.Option("1,16,256", "--batch", metavar="SIZES", help="Comma-separated batch sizes (vectors per call)."),
    threads: Optional[int] = typer.Option(None, "--threads", metavar="THREADS", callback=in_range("--threads"), help=range_help("--threads", "Threads for every method [default: all cores].")),
    device: str = typer.Option("cpu", "--device", metavar="cpu|cuda[:N]", autocompletion=complete_device, help="cpu, or cuda (cuda:N) to time the torch path on the GPU."),
    repeat: int = typer.Option(15, "--repeat", metavar="R", callback=in_range("--repeat"), help=range_help("--repeat", "Timed measurements per method and batch (median reported).")),
    as_json: bool = typer.Option(False, "--json", is_eager=True, help="Print one JSON document on stdout."),  # eager: range errors see it
) -> None:
    """Time the factors (compiled kernel, torch) against dense GEMV/GEMM and a fast library."""
    from .. import h5format
    from ..bench import parse_batches, run_bench
    from ..devices import check_device

    batches = parse_batches(batch)
    check_device(device)
    factors = h5format.load(path)
    with progress_status(f"benchmarking N={factors.n}", as_json):
        doc = run_bench(factors, file=str(path), batches=batches, threads=threads, device=device, repeat=repeat)
    if as_json:
        emit_json(doc)
    else:
        _print_table(doc)


def _print_table(doc: dict[str, Any]) -> None:
    """Per batch: µs per vector of each method and the two ratios; then labels and accuracy."""
    from rich.table import Table

    methods = doc["methods"]
    title = (f"{doc['file']}: {doc['transform']} N={doc['n']} {doc['structure']}, {doc['input_dtype']}, "
             f"{doc['device']}, {doc['threads']} thread(s), µs/vector (median of {doc['repeat']})")
    table = Table(title=title)
    table.add_column("batch", justify="right")
    for _, header in _COLUMNS:
        table.add_column(header, justify="right")
    table.add_column("dense/bfly", justify="right")
    table.add_column("bfly/fast", justify="right")
    for row in doc["results"]:
        us, ratios = row["us_per_vector"], row["ratios"]
        table.add_row(str(row["batch"]), *(_num(us[key]) for key, _ in _COLUMNS),
                      _ratio(ratios["dense_over_butterfly"]), _ratio(ratios["butterfly_over_fast"]))
    console = stdout_console()
    console.print(table)
    for key, _ in _COLUMNS:
        m = methods[key]
        diff = doc["rel_diff"][key]
        detail = f"rel. diff vs reference {diff:.1e}" if diff is not None else m["reason"]
        console.print(f"{key:>9}: {m['label']}; {detail}")
    acc = doc["accuracy"]
    console.print(f" accuracy: rel_error {_sci(acc['rel_error'])}, max_abs_error {_sci(acc['max_abs_error'])}, "
                  f"rmse {_sci(acc['rmse'])} (as recorded)")


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:,.3g}" if value < 100 else f"{value:,.0f}"


def _ratio(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}x" if value >= 100 else f"{value:.3g}x"


def _sci(value: Any) -> str:
    return "?" if value is None else f"{float(value):.2e}"


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
