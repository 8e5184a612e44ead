"""Figures of a sweep: the RMSE heat map and speed curves as PNGs, or a heat map in the terminal.

matplotlib is an optional extra (``pip install 'bfly[plot]'``): it is heavy and only this module
needs it, so :func:`have_matplotlib` is checked first and the terminal heat map (rich, always
installed) stands in when it is absent. matplotlib runs with the non-interactive Agg backend so a
sweep on a server without a display still writes its PNGs.

The heat map follows the paper's Figure 3: log10 RMSE, transforms down, sizes across, one shared
colour scale; bfly's panel sits beside the paper's so the gap is visible at a glance. RMSE below
``FLOOR`` (float64 round-off, or exactly 0) is drawn at the floor and labelled with its value.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Any

from .sweep_report import axes, bench_fields, has_bench, paper_data, paper_rmse, sci

FLOOR = 1e-16  # log10 RMSE below this is round-off; the colour scale stops here
CEILING = 1.0
PAPER_THRESHOLD = 1e-4  # the paper's "recovered" line, marked on the colour bar
INSTALL_HINT = "install the plot extra for PNG figures: pip install 'bfly[plot]'"


def have_matplotlib() -> bool:
    """True when matplotlib can be imported (without importing it)."""
    return importlib.util.find_spec("matplotlib") is not None


def _log_rmse(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return math.log10(max(value, FLOOR)) if math.isfinite(value) else None


def rmse_matrices(records: list[dict[str, Any]]) -> tuple[list[str], list[int], list[list], list[list]]:
    """(transforms, sizes, bfly log10 RMSE rows, paper log10 RMSE rows); None where there is no value."""
    names, sizes = axes(records)
    by_key = {(r["transform"], int(r["n"])): r for r in records}
    ours, paper = [], []
    for name in names:
        row = [by_key.get((name, n)) for n in sizes]
        ours.append([_log_rmse(r.get("rmse")) if r and r.get("status") == "ok" else None for r in row])
        paper.append([_log_rmse(paper_rmse(name, n)) for n in sizes])
    return names, sizes, ours, paper


# ----------------------------------------------------------------------------- PNG figures


def write_pngs(out_dir: Path, records: list[dict[str, Any]]) -> list[Path]:
    """Write ``rmse_heatmap.png`` and, when bench ran, ``speed.png``; return the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    paths = [_save(heatmap_figure(records), Path(out_dir) / "rmse_heatmap.png")]
    if has_bench(records):
        paths.append(_save(speed_figure(records), Path(out_dir) / "speed.png"))
    return paths


def _save(figure, path: Path) -> Path:
    """Save atomically (temp name, then rename) so a reader never sees half a PNG."""
    import matplotlib.pyplot as plt

    from .safe_write import atomic_write

    atomic_write(path, lambda tmp: figure.savefig(tmp, dpi=130, bbox_inches="tight", format="png"), force=True)
    plt.close(figure)
    return path


def heatmap_figure(records: list[dict[str, Any]]):
    """Two heat maps (bfly, paper) of log10 RMSE over transforms x N with one colour bar."""
    import matplotlib.pyplot as plt

    names, sizes, ours, paper = rmse_matrices(records)
    width = 2.0 + 1.3 * len(sizes)
    figure, panels = plt.subplots(1, 2, figsize=(width, 1.6 + 0.55 * len(names)), sharey=True,
                                  constrained_layout=True)
    solvers = "/".join(sorted({str(r.get("solver")) for r in records if r.get("solver")}))
    title_ours = f"bfly, solver {solvers} (float64)"
    title_paper = "Dao et al. 2019 (float32, learned)"
    image = None
    for panel, values, raw_of, title in ((panels[0], ours, _our_raw(records), title_ours),
                                         (panels[1], paper, _paper_raw, title_paper)):
        image = _draw_heatmap(panel, names, sizes, values, raw_of, title)
    bar = figure.colorbar(image, ax=list(panels), shrink=0.95, pad=0.02)
    bar.set_label("log10 RMSE (lower is better)\nwhite line: paper's success threshold 1e-4")
    bar.ax.axhline(math.log10(PAPER_THRESHOLD), color="white", linewidth=2)
    panels[0].set_ylabel("transform")
    figure.suptitle("RMSE of butterfly factorizations per transform and size N")
    return figure


def _our_raw(records: list[dict[str, Any]]):
    by_key = {(r["transform"], int(r["n"])): r for r in records}

    def raw(name: str, n: int) -> str:
        r = by_key.get((name, n))
        if r is None:
            return "not run"
        return sci(r.get("rmse"), 0) if r.get("status") == "ok" else str(r.get("status"))

    return raw


def _paper_raw(name: str, n: int) -> str:
    return sci(paper_rmse(name, n), 0)


def _draw_heatmap(panel, names: list[str], sizes: list[int], values: list[list], raw_of, title: str):
    """One panel: cells coloured by log10 RMSE, each labelled with its RMSE; gaps hatched grey."""
    import numpy as np

    grid = np.array([[np.nan if v is None else v for v in row] for row in values], dtype=float)
    masked = np.ma.masked_invalid(grid)
    cmap = _colormap()
    image = panel.imshow(masked, cmap=cmap, vmin=math.log10(FLOOR), vmax=math.log10(CEILING), aspect="auto")
    panel.set_facecolor("#d0d0d0")
    for i, name in enumerate(names):
        for j, n in enumerate(sizes):
            label = raw_of(name, n)
            dark = not np.isnan(grid[i, j]) and grid[i, j] < -9
            panel.text(j, i, label, ha="center", va="center", fontsize=7, color="white" if dark else "black")
    panel.set_xticks(range(len(sizes)), [str(n) for n in sizes])
    panel.set_yticks(range(len(names)), names)
    panel.set_xlabel("N (matrix size)")
    panel.set_title(title, fontsize=10)
    return image


def _colormap():
    import matplotlib

    return matplotlib.colormaps["viridis"].with_extremes(bad="#d0d0d0")


def speed_figure(records: list[dict[str, Any]]):
    """µs per vector vs N (butterfly, dense GEMV, fast library) per transform, plus speed-up vs the paper."""
    import matplotlib.pyplot as plt

    benched = [name for name in axes(records)[0] if any(r.get("bench") and r["transform"] == name for r in records)]
    cols = min(4, len(benched)) + 1
    rows = math.ceil((len(benched) + 1) / cols)
    figure, grid = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.8 * rows), squeeze=False, constrained_layout=True)
    panels = list(grid.flat)
    for panel, name in zip(panels, benched):
        _speed_panel(panel, name, records)
    speedup = panels[len(benched)]
    _speedup_panel(speedup, benched, records)
    spare = panels[len(benched) + 1:]
    for panel in spare:
        panel.axis("off")
    if spare:  # the speed-up panel has many lines: its legend reads better beside it than on it
        spare[0].legend(*speedup.get_legend_handles_labels(), loc="center left", fontsize=8,
                        title="speed-up over dense GEMV")
    else:
        speedup.legend(fontsize=6)
    figure.suptitle("Time to apply one vector (one thread, batch 1, the factors' dtype; lower is better)")
    return figure


def _series(records: list[dict[str, Any]], name: str, key: str) -> tuple[list[int], list[float]]:
    points = sorted((int(r["n"]), bench_fields(r)[key]) for r in records
                    if r["transform"] == name and r.get("bench") and bench_fields(r)[key])
    return [p[0] for p in points], [float(p[1]) for p in points]


def _log2_axis(panel) -> None:
    """Log-2 x axis labelled with plain sizes (8, 16, ...) rather than powers."""
    from matplotlib.ticker import LogLocator, ScalarFormatter

    panel.set_xscale("log", base=2)
    panel.xaxis.set_major_locator(LogLocator(base=2))
    panel.xaxis.set_major_formatter(ScalarFormatter())


def _speed_panel(panel, name: str, records: list[dict[str, Any]]) -> None:
    styles = (("butterfly_us", "butterfly (bfly)", "o-"), ("dense_us", "dense GEMV", "s--"), ("fft_us", "fast library", "^:"))
    for key, label, style in styles:
        xs, ys = _series(records, name, key)
        if xs:
            panel.plot(xs, ys, style, label=label, markersize=4)
    _log2_axis(panel)
    panel.set_yscale("log")
    panel.set_title(name, fontsize=10)
    panel.set_xlabel("N")
    panel.set_ylabel("µs per vector")
    panel.grid(True, which="both", alpha=0.3)
    panel.legend(fontsize=7)


def _speedup_panel(panel, names: list[str], records: list[dict[str, Any]]) -> None:
    """Speed-up over dense GEMV: bfly's butterflies beside the paper's butterfly and numpy FFT."""
    for name in names:
        xs, ys = _series(records, name, "dense_over_butterfly")
        if xs:
            panel.plot(xs, ys, "o-", markersize=3, label=f"bfly {name}")
    paper = paper_data("paper_speed_cpu")
    for key, style in (("butterfly_BP", "k--"), ("numpy_fft", "k:")):
        panel.plot(paper["sizes"], paper["speedup_over_gemv"][key], style, label=f"paper {key} (float32)")
    panel.axhline(1.0, color="grey", linewidth=0.8)
    _log2_axis(panel)
    panel.set_yscale("log")
    panel.set_title("speed-up over dense GEMV", fontsize=10)
    panel.set_xlabel("N")
    panel.set_ylabel("dense time / butterfly time")
    panel.grid(True, which="both", alpha=0.3)


# ----------------------------------------------------------------------------- terminal heat map


def terminal_heatmap(records: list[dict[str, Any]]):
    """A rich renderable: per transform a bfly row and a paper row, cells coloured by log10 RMSE.

    The colours are the PNG's (viridis: dark purple at 1e-16, yellow at 1), so the terminal and
    the figure read the same way.
    """
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    names, sizes, ours, paper = rmse_matrices(records)
    raw = _our_raw(records)
    table = Table()
    table.add_column("transform", style="bold")
    table.add_column("")
    for n in sizes:
        table.add_column(f"N={n}", justify="center")
    for name, our_row, paper_row in zip(names, ours, paper):
        table.add_row(name, "bfly", *[_colored(raw(name, n), v) for n, v in zip(sizes, our_row)])
        if any(v is not None for v in paper_row):
            table.add_row("", "paper", *[_colored(_paper_raw(name, n), v) for n, v in zip(sizes, paper_row)])
    legend = Text("RMSE per transform and N; colour: log10 RMSE from ")
    legend.append(" 1e-16 ", style=f"white on {_rgb(math.log10(FLOOR))}")
    legend.append(" to ")
    legend.append(" 1 ", style=f"black on {_rgb(0.0)}")
    return Group(legend, table)


VIRIDIS = ((0.0, (68, 1, 84)), (0.25, (59, 82, 139)), (0.5, (33, 145, 140)), (0.75, (94, 201, 98)), (1.0, (253, 231, 37)))


def _colored(label: str, log_value: float | None):
    from rich.text import Text

    if log_value is None:
        return Text(label, style="dim")
    fg = "white" if _position(log_value) < 0.55 else "black"
    return Text(f" {label} ", style=f"{fg} on {_rgb(log_value)}")


def _position(log_value: float) -> float:
    low, high = math.log10(FLOOR), math.log10(CEILING)
    return min(1.0, max(0.0, (log_value - low) / (high - low)))


def _rgb(log_value: float) -> str:
    """The viridis colour of ``log_value`` on the FLOOR..CEILING scale, as a rich colour string."""
    t = _position(log_value)
    for (t0, c0), (t1, c1) in zip(VIRIDIS, VIRIDIS[1:]):
        if t <= t1:
            w = (t - t0) / (t1 - t0)
            r, g, b = (round(a + w * (b_ - a)) for a, b_ in zip(c0, c1))
            return f"rgb({r},{g},{b})"
    return "rgb(253,231,37)"
