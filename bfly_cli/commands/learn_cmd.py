"""``bfly learn``: factor a named transform or a matrix file and save the factors to HDF5."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Optional

import typer

from ..solvers.registry import SOLVERS
from ._choices import LearnDtype, Model, Norm, Solver, complete_device
from ._common import emit_json, guarded, progress_status, stdout_console
from ._options import in_range, range_help

_SOLVER_HELP = "Solver: " + "; ".join(f"{s.name} ({s.help})" for s in SOLVERS) + "."


@guarded
def learn(
    target: str = typer.Argument(..., metavar="TARGET", help="Transform name (see 'bfly list') or a .npy/.npz/.h5 matrix file."),
    n: Optional[int] = typer.Option(None, "--n", "-n", metavar="N", callback=in_range("--n"), help=range_help("--n", "Size N, a power of two (inferred for a matrix file).")),
    output: Optional[Path] = typer.Option(None, "-o", "--output", metavar="FILE", help="Output file [default: NAME-N.h5 here]."),
    solver: Solver = typer.Option("auto", "--solver", help=_SOLVER_HELP),
    budget: Optional[int] = typer.Option(None, "--budget", metavar="B", callback=in_range("--budget"), help=range_help("--budget", "auto only: butterfly blocks for the approximation [default: 1].")),
    strict_budget: bool = typer.Option(False, "--strict-budget", help="auto only: the budget caps exact structures too (skip an exact one that stores more real numbers than BUDGET complex B.P's)."),
    model: Optional[Model] = typer.Option(None, "--model", help="gradient only: the product to fit [default: BP]."),
    restarts: Optional[int] = typer.Option(None, "--restarts", metavar="R", callback=in_range("--restarts"), help=range_help("--restarts", "gradient only: at most R random restarts [default: 8].")),
    steps: Optional[int] = typer.Option(None, "--steps", metavar="STEPS", callback=in_range("--steps"), help=range_help("--steps", "gradient only: Adam steps per restart [default: 300].")),
    lr: Optional[float] = typer.Option(None, "--lr", metavar="LR", callback=in_range("--lr"), help=range_help("--lr", "gradient only: fixed learning rate [default: log-uniform per restart].")),
    device: Optional[str] = typer.Option(None, "--device", metavar="cpu|cuda[:N]", autocompletion=complete_device, help="gradient only: cpu or cuda [default: cpu]."),
    dtype: LearnDtype = typer.Option("float64", "--dtype", help="Working precision."),
    seed: Optional[int] = typer.Option(None, "--seed", metavar="SEED", callback=in_range("--seed"), help=range_help("--seed", "Seed for random targets (convolution, randn) and for --solver gradient's restarts [default: 0].")),
    norm: Optional[Norm] = typer.Option(None, "--norm", help="dft/idft/dct/dst: backward, ortho or forward (scipy.fft's meanings) or paper (the seed paper's scaling) [default: ortho for dft/idft, paper for dct/dst; see 'bfly list']."),
    kind: Optional[int] = typer.Option(None, "--type", metavar="2|3|4", callback=in_range("--type"), help=range_help("--type", "dct/dst only: type 2, 3 or 4 (scipy.fft's definitions) [default: 2].")),
    filter_path: Optional[Path] = typer.Option(None, "--filter", metavar="FILE.npy", help="convolution only: the filter as a 1-D .npy file."),
    tol: Optional[float] = typer.Option(None, "--tol", metavar="TOL", callback=in_range("--tol"), help=range_help("--tol", "Fail (exit 1) when rel_error is above this.")),
    as_json: bool = typer.Option(False, "--json", is_eager=True, help="Print one JSON document on stdout."),  # eager: range errors see it
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing on success."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing output file."),
) -> None:
    """Learn a butterfly factorization B.P of a transform and save it (exit 1 if --tol is missed)."""
    from .. import h5format, safe_write
    from ..errors import CheckFailed
    from ..verbs import learn as learn_target
    from ..verbs import resolve_target

    with progress_status("building target", quiet or as_json):
        tgt = resolve_target(target, n, solver=solver, seed=seed, norm=norm, type=kind, filter=filter_path)
    out = output or Path(f"{tgt.name}-{tgt.n}.h5")
    safe_write.check_writable(out, force, inputs=(tgt.source, filter_path))  # never over the matrix or filter
    failure = None
    with _learn_progress(solver, f"learning {tgt.name} N={tgt.n}", quiet or as_json) as on_progress:
        try:
            factors = learn_target(tgt, solver=solver, dtype=dtype, tol=tol, seed=seed, budget=budget,
                                   strict_budget=strict_budget, model=model, restarts=restarts, steps=steps, lr=lr,
                                   device=device, on_progress=on_progress)
        except CheckFailed as exc:
            factors, failure = exc.factors, exc
    saved = None if failure else str(h5format.save(factors, out, force=force))
    _report(factors.meta, saved, as_json, quiet)
    if failure:
        raise failure


@contextlib.contextmanager
def _learn_progress(solver: str, message: str, quiet: bool):
    """Yield a progress callback for the gradient solver (a rich bar on a terminal), else a spinner."""
    import sys

    if solver != "gradient" or quiet or not sys.stderr.isatty():
        with progress_status(message, quiet):
            yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(message, total=None, info="")

        def on_progress(event: dict) -> None:
            desc = f"{message}: restart {event['restart']} of {event['restarts']}"
            bar.update(task, description=desc, completed=event["step"] if event["phase"] == "adam" else event["steps"],
                       total=event["steps"], info=f"{event['phase']} step {event['step']}, loss {event['loss']:.2e}")

        yield on_progress


def _report(meta: dict, saved: str | None, as_json: bool, quiet: bool) -> None:
    from ..report import learn_document, summary_table

    if as_json:
        emit_json(learn_document(meta, saved))
    elif not quiet:
        console = stdout_console()
        console.print(summary_table(meta, "bfly learn"))
        console.print(f"saved to {saved}" if saved else "not saved: the --tol check failed")


def register(app: typer.Typer) -> None:
    app.command("learn")(learn)
