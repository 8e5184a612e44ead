"""Turning sweep cell records into ``results.csv`` and ``report.md``, beside the paper's numbers.

Kept apart from :mod:`bfly_cli.sweep` (which only runs cells) so that a merge, a re-run or a
user with only the records can regenerate the summaries without running anything. The paper's
numbers ship inside the package (``bfly_cli/data/paper_*.json``, copied from the authors'
published data) because a user's installation has no access to the project's reference notes.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import math
import os
import platform
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

CSV_COLUMNS = (
    "transform", "n", "solver", "structure", "params", "rmse", "rel_error", "seconds", "status",
    "exact", "max_abs_error", "paper_rmse", "route", "wall_seconds", "error",
)
BENCH_COLUMNS = ("butterfly_us", "dense_us", "fft_us", "dense_over_butterfly", "butterfly_over_fft", "fft_name")
EXACT_REL_ERROR = 1e-12
PAPER_TRANSFORMS = ("dft", "dct", "dst", "convolution", "hadamard", "hartley", "legendre", "randn")  # its order
DATA_DIR = Path(__file__).parent / "data"  # a plain path: works for wheels and editable installs alike


# ----------------------------------------------------------------------------- the paper's data


@lru_cache(maxsize=None)
def paper_data(name: str) -> dict[str, Any]:
    """``paper_rmse`` or ``paper_speed_cpu``: the packaged JSON (see its ``source`` field)."""
    return json.loads((DATA_DIR / f"{name}.json").read_text())


def paper_rmse(transform: str, n: int) -> float | None:
    """The paper's RMSE for ``transform`` at size ``n``, or None where it reported none."""
    data = paper_data("paper_rmse")
    values = data["rmse"].get(transform)
    if values is None or n not in data["sizes"]:
        return None
    return float(values[data["sizes"].index(n)])


# ----------------------------------------------------------------------------- ordering and rows


def ordered(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records in report order: the paper's transforms in its order, then others by name; then N."""
    rank = {name: k for k, name in enumerate(PAPER_TRANSFORMS)}
    return sorted(records, key=lambda r: (rank.get(r["transform"], len(rank)), r["transform"], int(r["n"])))


def axes(records: list[dict[str, Any]]) -> tuple[list[str], list[int]]:
    """The transforms (report order) and sizes present in ``records``."""
    rows = ordered(records)
    return list(dict.fromkeys(r["transform"] for r in rows)), sorted({int(r["n"]) for r in rows})


def has_bench(records: Iterable[dict[str, Any]]) -> bool:
    """Whether any cell carries bench timings (decides the extra columns and the speed figure)."""
    return any(r.get("bench") for r in records)


def csv_row(record: dict[str, Any], bench: bool) -> dict[str, Any]:
    """One results.csv row: the record's fields, the paper's RMSE and, with bench, the ratios."""
    row = {key: record.get(key) for key in CSV_COLUMNS}
    row["paper_rmse"] = paper_rmse(record["transform"], int(record["n"]))
    if bench:
        row.update(bench_fields(record))
    return row


def bench_fields(record: dict[str, Any]) -> dict[str, Any]:
    """µs per vector and the two ratios (dense/butterfly: speed-up; butterfly/fft: gap to the FFT)."""
    bench = record.get("bench") or {}
    fly, dense, fft = bench.get("butterfly_us"), bench.get("dense_us"), bench.get("fft_us")
    return {
        "butterfly_us": fly, "dense_us": dense, "fft_us": fft, "fft_name": bench.get("fft_name"),
        "dense_over_butterfly": dense / fly if fly and dense else None,
        "butterfly_over_fft": fly / fft if fly and fft else None,
    }


def write_csv(path: Path, records: list[dict[str, Any]]) -> Path:
    """``results.csv``: one row per cell, floats in full precision (for plotting or pandas)."""
    bench = has_bench(records)
    columns = CSV_COLUMNS + (BENCH_COLUMNS if bench else ())
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for record in ordered(records):
        writer.writerow({k: ("" if v is None else v) for k, v in csv_row(record, bench).items()})
    return _write_text(path, buffer.getvalue())


def _write_text(path: Path, text: str) -> Path:
    from .safe_write import atomic_write

    return atomic_write(path, lambda tmp: Path(tmp).write_text(text), force=True)


# ----------------------------------------------------------------------------- report.md


def sci(value: Any, digits: int = 1) -> str:
    """Compact scientific notation for tables (``2.0e-17``); exact zero and missing values spelled out."""
    if value is None:
        return "-"
    value = float(value)
    if value == 0.0:
        return "0"
    if not math.isfinite(value):
        return str(value)
    return f"{value:.{digits}e}"


def cell_text(record: dict[str, Any] | None, key: str) -> str:
    """A grid cell: the value, or why there is none (not run, failed, timeout)."""
    if record is None:
        return "not run"
    if record.get("status") != "ok":
        return str(record.get("status", "failed"))
    return sci(record.get(key))


def rmse_grid(records: list[dict[str, Any]]) -> str:
    """Markdown: per transform a ``bfly`` row and a ``paper`` row of RMSE over the sizes."""
    names, sizes = axes(records)
    by_key = {(r["transform"], int(r["n"])): r for r in records}
    lines = ["| transform | | " + " | ".join(f"N={n}" for n in sizes) + " |",
             "|---|---|" + "---|" * len(sizes)]
    for name in names:
        lines.append(f"| {name} | bfly | " + " | ".join(cell_text(by_key.get((name, n)), "rmse") for n in sizes) + " |")
        paper = [sci(paper_rmse(name, n)) for n in sizes]
        if any(p != "-" for p in paper):
            lines.append("| | paper | " + " | ".join(paper) + " |")
    return "\n".join(lines)


def rel_error_grid(records: list[dict[str, Any]]) -> str:
    """Markdown: rel_error per cell, the structure found, and whether every size is exact."""
    names, sizes = axes(records)
    by_key = {(r["transform"], int(r["n"])): r for r in records}
    lines = ["| transform | structure | " + " | ".join(f"N={n}" for n in sizes) + " | exact at every N |",
             "|---|---|" + "---|" * len(sizes) + "---|"]
    for name in names:
        row = [by_key.get((name, n)) for n in sizes]
        done = [r for r in row if r and r.get("status") == "ok"]
        structures = "/".join(dict.fromkeys(str(r.get("structure")) for r in done)) or "-"
        exact = bool(done) and len(done) == len(row) and all(_is_exact(r) for r in done)
        cells = " | ".join(cell_text(r, "rel_error") for r in row)
        lines.append(f"| {name} | {structures} | {cells} | {'yes' if exact else 'no'} |")
    return "\n".join(lines)


def headline_table(records: list[dict[str, Any]]) -> str:
    """Markdown: one row per transform, the verdict first: exact at every N, worst errors, vs the paper."""
    names, sizes = axes(records)
    by_key = {(r["transform"], int(r["n"])): r for r in records}
    lines = ["| transform | structure | exact at every N | worst rel_error | worst RMSE | paper's worst RMSE | RMSE <= paper at every N | cells ok |",
             "|---|---|---|---|---|---|---|---|"]
    for name in names:
        row = [by_key.get((name, n)) for n in sizes]
        done = [r for r in row if r and r.get("status") == "ok"]
        structures = "/".join(dict.fromkeys(str(r.get("structure")) for r in done)) or "-"
        exact = bool(done) and len(done) == len(row) and all(_is_exact(r) for r in done)
        paper = [v for v in (paper_rmse(name, n) for n in sizes) if v is not None]
        lines.append(f"| {name} | {structures} | {'yes' if exact else 'no'} | "
                     f"{sci(max((float(r['rel_error']) for r in done), default=None))} | "
                     f"{sci(max((float(r['rmse']) for r in done), default=None))} | "
                     f"{sci(max(paper, default=None))} | {_beats_paper(name, row)} | {len(done)}/{len(row)} |")
    return "\n".join(lines)


def _beats_paper(name: str, row: list[dict[str, Any] | None]) -> str:
    """yes/no: bfly's RMSE at or below the paper's at every size of ``row``; '-' without paper data."""
    pairs = [(r, paper_rmse(name, int(r["n"]))) for r in row if r]
    pairs = [(r, p) for r, p in pairs if p is not None]
    if not pairs:
        return "-"
    ok = len(pairs) == len(row) and all(r.get("status") == "ok" and float(r["rmse"]) <= p for r, p in pairs)
    return "yes" if ok else "no"


def _is_exact(record: dict[str, Any]) -> bool:
    value = record.get("rel_error")
    return value is not None and float(value) <= EXACT_REL_ERROR


def cells_table(records: list[dict[str, Any]]) -> str:
    """Markdown: every cell with structure, parameters, errors, solver time and status."""
    lines = ["| transform | N | solver | structure | params | dense params | rmse | paper rmse | rel_error | solver s | status |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in ordered(records):
        n = int(r["n"])
        params = f"{int(r['params']):,}" if r.get("params") is not None else "-"
        seconds = f"{float(r['seconds']):.3f}" if r.get("seconds") is not None else "-"
        solver = str(r.get("solver", "-")) + (f" ({r['route']})" if r.get("route") else "")
        lines.append(f"| {r['transform']} | {n} | {solver} | {r.get('structure') or '-'} | {params} | "
                     f"{n * n:,} | {sci(r.get('rmse'))} | {sci(paper_rmse(r['transform'], n))} | "
                     f"{sci(r.get('rel_error'))} | {seconds} | {r.get('status')} |")
    return "\n".join(lines)


def speed_table(records: list[dict[str, Any]]) -> str:
    """Markdown: µs per vector (batch 1, one thread) and the ratios, for the cells that were benched."""
    lines = ["| transform | N | butterfly µs | dense GEMV µs | fast library µs | dense / butterfly | butterfly / fast | fast library |",
             "|---|---|---|---|---|---|---|---|"]
    for r in ordered(records):
        if not r.get("bench"):
            continue
        f = bench_fields(r)
        lines.append(f"| {r['transform']} | {r['n']} | {_num(f['butterfly_us'])} | {_num(f['dense_us'])} | "
                     f"{_num(f['fft_us'])} | {_num(f['dense_over_butterfly'])} | {_num(f['butterfly_over_fft'])} | "
                     f"{f['fft_name'] or '-'} |")
    return "\n".join(lines)


def _num(value: Any) -> str:
    return "-" if value is None else f"{float(value):.3g}"


def failures(records: list[dict[str, Any]]) -> str:
    """Markdown list of the cells that failed or timed out (or whose bench failed), with the reasons."""
    lines = []
    for r in ordered(records):
        if r.get("status") != "ok":
            lines.append(f"- `{r['transform']}-{r['n']}` {r.get('status')}: {r.get('error')}")
        elif str(r.get("bench_status", "")).startswith("failed"):
            lines.append(f"- `{r['transform']}-{r['n']}` learned, but bench {r['bench_status']}")
    return "\n".join(lines)


def summary_counts(records: list[dict[str, Any]]) -> dict[str, int]:
    """How many cells ended ok / failed / timeout."""
    counts: dict[str, int] = {}
    for r in records:
        counts[r.get("status", "failed")] = counts.get(r.get("status", "failed"), 0) + 1
    return counts


def report_markdown(records: list[dict[str, Any]], images: list[str], note: str | None = None) -> str:
    """The whole report.md: provenance, the RMSE grid beside the paper, exactness, cells, speed."""
    counts = summary_counts(records)
    machines = sorted({str(r.get("machine")) for r in records if r.get("machine")})
    solvers = sorted({str(r.get("solver")) for r in records if r.get("solver")})
    source = paper_data("paper_rmse")["source"]
    parts = [
        "# bfly sweep report",
        "",
        f"- generated {_dt.datetime.now(_dt.timezone.utc).isoformat(timespec='seconds')} by bfly {_version()}",
        f"- machine: {'; '.join(machines) or 'unknown'}",
        f"- solver: {', '.join(solvers) or '-'}; cells: {len(records)} "
        f"({', '.join(f'{v} {k}' for k, v in sorted(counts.items()))})",
        "",
        "## Summary",
        "",
        "Exact: rel_error <= 1e-12 in float64 at every size. The paper counted RMSE <= 1e-4 as recovered.",
        "",
        headline_table(records),
        "",
        "## RMSE beside the paper",
        "",
        "RMSE is the paper's absolute measure, `||M - T||_F / N` (real) or `/ (sqrt(2) N)` (complex). "
        "bfly works in float64; the paper trained in float32 and counted RMSE <= 1e-4 as recovered. "
        f"Paper values: {source}",
        "",
        rmse_grid(records),
        "",
        *_image(images, "rmse_heatmap"),
        "## Relative error (exact: rel_error <= 1e-12 in float64)",
        "",
        rel_error_grid(records),
        "",
    ]
    if has_bench(records):
        parts += ["## Speed (one vector, one thread, µs per vector; medians)", "", *_image(images, "speed"),
                  "Timed by `bfly bench` in each cell's worker, in the factors' own dtype (float64 or complex128; "
                  "the paper timed float32), against a dense GEMV with the reconstructed matrix and the fast "
                  "library for the transform. Cells ran `--jobs` at a time, so other work shared the machine.",
                  "", speed_table(records), ""]
    if note:
        parts += [note, ""]
    parts += ["## Every cell", "", cells_table(records), ""]
    bad = failures(records)
    if bad:
        parts += ["## Failed or timed out", "", bad, ""]
    return "\n".join(parts)


def _image(images: list[str], stem: str) -> list[str]:
    """The Markdown line (and a blank) embedding the image named ``stem``, if it was written."""
    return [f"![{stem}]({img})\n" for img in images if Path(img).stem == stem]


def write_report(path: Path, records: list[dict[str, Any]], images: list[str], note: str | None = None) -> Path:
    """Write ``report.md`` atomically."""
    return _write_text(path, report_markdown(records, images, note))


def _version() -> str:
    from ._version import __version__

    return __version__


# ----------------------------------------------------------------------------- the machine


@lru_cache(maxsize=None)
def machine_description() -> str:
    """One line naming the CPU, core count, memory and OS, for stating where numbers came from."""
    cpu = _cpu_model() or platform.processor() or platform.machine()
    cores = os.cpu_count() or 1
    memory = _memory_gib()
    mem = f", {memory:.0f} GiB RAM" if memory else ""
    return f"{cpu}, {cores} cores{mem}, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def _memory_gib() -> float | None:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30
    except (ValueError, OSError, AttributeError):
        return None
