"""``bfly bench``: time a factor file against dense multiplication and the best fast library."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ._choices import complete_device
from ._common import emit_json, guarded, progress_status, stdout_console
from ._options import in_range, range_help

_NAMES = {"butterfly": "bfly", "torch": "torch", "dense": "dense", "fast": "fast"}
_RATIO_OF = {"dense": ("dense_over_butterfly", "dense/bfly"), "fast": ("butterfly_over_fast", "bfly/fast")}


@guarded
def bench(
    path: Path = typer.Argument(..., metavar="FILE", help="A factor file written by 'bfly learn'."),
    batch: str = typer.Option("1,16,256", "--batch", metavar="SIZES", help="Comma-separated batch sizes (vectors per call)."),
    threads: int = typer.Option(1, "--threads", metavar="THREADS", callback=in_range("--threads"), help=range_help("--threads", "Threads for every method (1 by default: all cores on a busy machine made absurd ratios).")),
    device: str = typer.Option("cpu", "--device", metavar="cpu|cuda[:N]", autocompletion=complete_device, help="cpu, or cuda (cuda:N) to time the torch path on the GPU."),
    repeat: int = typer.Option(15, "--repeat", metavar="R", callback=in_range("--repeat"), help=range_help("--repeat", "Timed measurements per method and batch (median reported).")),
    as_json: bool = typer.Option(False, "--json", is_eager=True, help="Print one JSON document on stdout."),  # eager: range errors see it
) -> None:
    """Time the factors (compiled kernel, torch) against dense GEMV/GEMM and a fast library."""
    from ..verbs import bench as run_bench

    with progress_status(f"benchmarking {path}", as_json):
        doc = run_bench(path, batch, threads=threads, device=device, repeat=repeat)
    if as_json:
        emit_json(doc)
    else:
        _print_table(doc)


def _print_table(doc: dict[str, Any]) -> None:
    """Per batch and method: median, min and IQR in µs per vector, the headline ratio (or
    "unstable" when a figure it divides is), and why a figure is unstable; then labels and accuracy."""
    from rich.table import Table

    title = (f"{doc['file']}: {doc['transform']} N={doc['n']} {doc['structure']}, {doc['input_dtype']}, "
             f"{doc['device']}, {doc['threads']} thread(s); µs per vector, {doc['repeat']} interleaved rounds")
    table = Table(title=title)
    for header in ("batch", "method", "median", "min", "IQR", "ratio", "status"):
        table.add_column(header, justify="left" if header in ("method", "ratio", "status") else "right")
    for row in doc["results"]:
        keys = [key for key in _NAMES if row["spread"].get(key)]
        for index, key in enumerate(keys):
            table.add_row(*_cells(row, key), end_section=index == len(keys) - 1)
    console = stdout_console()
    console.print(table)
    _print_notes(console, doc)


def _cells(row: dict[str, Any], key: str) -> tuple[str, ...]:
    spread, stability = row["spread"][key], row["stability"][key]
    status = "unstable: " + ", ".join(stability["flags"]) if stability["unstable"] else "ok"
    return (str(row["batch"]), _NAMES[key], _num(spread["median"]), _num(spread["min"]), _num(spread["iqr"]),
            _ratio_cell(row, key), status)


def _ratio_cell(row: dict[str, Any], key: str) -> str:
    if key not in _RATIO_OF:
        return ""
    name, header = _RATIO_OF[key]
    value = row["ratios"][name]
    if value is None:
        return ""
    return "unstable" if row["ratio_unstable"][name] else f"{header} {_ratio(value)}"


def _print_notes(console, doc: dict[str, Any]) -> None:
    for key in _NAMES:
        m = doc["methods"][key]
        diff = doc["rel_diff"][key]
        if diff is None:
            console.print(f"{key:>9}: {m['label']}; {m['reason']}")
            continue
        threads = "" if m["threads"] is None else f", {m['threads']} thread(s)"
        console.print(f"{key:>9}: {m['label']}{threads}; rel. diff vs reference {diff:.1e}")
    if doc["fast_library"]:
        console.print(f" fast baseline library: {doc['fast_library']}")
    if doc["unstable"]:
        limits = doc["unstable_limits"]
        console.print(f" unstable: wide spread = IQR over {limits['relative_iqr']:.0%} of the median; grows with "
                      f"batch = per-vector cost over {limits['batch_growth']:g}x that at the previous batch size. "
                      "Ratios of such figures are not quoted: rerun on an idle machine (see uptime), with more "
                      "--repeat or fewer --threads")
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
