"""``bfly learn``: factor a named transform or a matrix file and save the factors to HDF5."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ._common import emit_json, guarded, progress_status, stdout_console


@guarded
def learn(
    target: str = typer.Argument(..., help="Transform name (see 'bfly list') or a .npy/.npz/.h5 matrix file."),
    n: Optional[int] = typer.Option(None, "--n", "-n", help="Size N, a power of two (inferred for a matrix file)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Output file [default: NAME-N.h5 here]."),
    solver: str = typer.Option("auto", "--solver", help="Solver: auto (first exact of B.P, real rank-2, two butterflies, else best approximation), hierarchical, real_rank2."),
    budget: Optional[int] = typer.Option(None, "--budget", help="auto only: butterfly blocks for the approximation, 1..8 [default: 1]."),
    dtype: str = typer.Option("float64", "--dtype", help="Working precision: float64 or float32."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed for random targets (convolution, randn) [default: 0]."),
    norm: Optional[str] = typer.Option(None, "--norm", help="dct/dst only: 'ortho' for the orthonormal variant."),
    filter_path: Optional[Path] = typer.Option(None, "--filter", help="convolution only: the filter as a 1-D .npy file."),
    tol: Optional[float] = typer.Option(None, "--tol", help="Fail (exit 1) when rel_error is above this."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document on stdout."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing on success."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing output file."),
) -> None:
    """Learn a butterfly factorization B.P of a transform and save it (exit 1 if --tol is missed)."""
    from .. import h5format
    from ..errors import CheckFailed
    from ..learn import learn as learn_factors
    from ..targets import resolve

    options = {"seed": seed, "norm": norm, "filter": str(filter_path) if filter_path else None}
    with progress_status("building target", quiet or as_json):
        tgt = resolve(target, n, **options)
    out = output or Path(f"{tgt.name}-{tgt.n}.h5")
    h5format.check_writable(out, force)
    meta = {"transform": tgt.name, "transform_options": tgt.options, "seed": seed if seed is not None else 0,
            "command": _command_line()}
    if tgt.source:
        meta.update(transform="file", source=tgt.source, source_sha256=tgt.sha256)
    failure = None
    with progress_status(f"learning {tgt.name} N={tgt.n}", quiet or as_json):
        try:
            factors = learn_factors(tgt.matrix, solver=solver, dtype=dtype, tol=tol, meta=meta,
                                    solver_options=_solver_options(solver, budget))
        except CheckFailed as exc:
            factors, failure = exc.factors, exc
    saved = None if failure else str(h5format.save(factors, out, force=force))
    _report(factors.meta, saved, as_json, quiet)
    if failure:
        raise failure


def _solver_options(solver: str, budget: int | None) -> dict:
    """``--budget`` goes to the solvers that take it; elsewhere it is a usage error (exit 2)."""
    from ..errors import BflyError
    from ..solvers.auto import check_budget

    if budget is None:
        return {}
    check_budget(budget)
    if solver != "auto":
        raise BflyError(f"--budget applies to --solver auto, not {solver!r}")
    return {"budget": budget}


def _report(meta: dict, saved: str | None, as_json: bool, quiet: bool) -> None:
    from ..report import learn_document, summary_table

    if as_json:
        emit_json(learn_document(meta, saved))
    elif not quiet:
        console = stdout_console()
        console.print(summary_table(meta, "bfly learn"))
        console.print(f"saved to {saved}" if saved else "not saved: the --tol check failed")


def _command_line() -> str:
    import shlex
    import sys

    return "bfly " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def register(app: typer.Typer) -> None:
    app.command("learn")(learn)
