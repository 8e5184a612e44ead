"""One library call per CLI verb: ``learn``, ``analyze``, ``bench`` (and ``verify``, in
:mod:`bfly_cli.verification`), with the CLI's results and metadata.

``bfly learn dct --n 512`` is :func:`learn` ``("dct", n=512)`` followed by ``save``; the command
module only parses arguments, shows progress and prints. So a file saved from Python is the file
the CLI would have written (same metadata: transform and options, or the source file and its
hash), and ``bfly verify`` / ``bfly bench`` accept it the same way. A matrix handed over in memory
records the sha256 of its values (``transform = "matrix"``): ``bfly verify --source FILE`` checks
the factors against any file holding those values.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from .errors import BflyError
from .factors import Factors

if TYPE_CHECKING:
    from .targets import Target


def learn(
    target: "str | Path | np.ndarray | Target",
    n: int | None = None,
    *,
    solver: str = "auto",
    dtype: str = "float64",
    tol: float | None = None,
    seed: int | None = None,
    norm: str | None = None,
    type: int | None = None,  # noqa: A002 - the CLI's --type (DCT/DST type), scipy's name
    filter: str | Path | None = None,  # noqa: A002 - the CLI's --filter
    budget: int | None = None,
    strict_budget: bool = False,
    model: str | None = None,
    restarts: int | None = None,
    steps: int | None = None,
    lr: float | None = None,
    device: str | None = None,
    on_progress: Callable[[dict], None] | None = None,
) -> Factors:
    """Learn the factors of a named transform (``"dct"``, with ``n``), a matrix file (``"m.npy"``)
    or a matrix (an array), exactly as ``bfly learn`` does, with save-ready metadata.

    Options mean what the CLI's do (``bfly learn --help``); options of another solver or another
    transform are a :class:`BflyError`, as on the command line. ``target`` may also be a
    :class:`~bfly_cli.targets.Target` from :func:`resolve_target` (the CLI resolves first, to name
    and check its output file before any work). Raises :class:`~bfly_cli.errors.CheckFailed`
    (with ``.factors``) when ``tol`` is missed.
    """
    from .learning import learn as learn_matrix
    from .targets import Target

    tgt = target if isinstance(target, Target) else resolve_target(
        target, n, solver=solver, seed=seed, norm=norm, type=type, filter=filter)
    solver_options = {**solver_options_for(solver, budget, strict_budget),
                      **gradient_options_for(solver, seed, model=model, restarts=restarts, steps=steps, lr=lr, device=device)}
    if on_progress is not None and solver == "gradient":
        solver_options["on_progress"] = on_progress
    return learn_matrix(tgt.matrix, solver=solver, dtype=dtype, tol=tol, meta=provenance(tgt, seed),
                        solver_options=solver_options)


def bench(factors: "Factors | str | Path", batches: "list[int] | tuple[int, ...] | str | None" = None, *,
          threads: int | None = None, device: str = "cpu", repeat: int | None = None) -> dict[str, Any]:
    """What ``bfly bench --json`` prints: the factors (a file path, or :class:`Factors`) timed
    against dense GEMV/GEMM and the fast library, every figure with its spread and thread count.
    ``batches`` as a list or as the CLI's ``"1,16,256"``; defaults are the command's."""
    from . import h5format, read_guard
    from .bench_run import DEFAULT_BATCHES, DEFAULT_REPEAT, DEFAULT_THREADS, parse_batches, run_bench
    from .devices import check_device

    check_device(device)
    sizes = parse_batches(batches) if isinstance(batches, str) else list(batches or DEFAULT_BATCHES)
    file = None
    if not isinstance(factors, Factors):
        file = str(factors)
        read_guard.check_readable(file)
        factors = h5format.load(file)
    return run_bench(factors, file=file, batches=sizes, threads=DEFAULT_THREADS if threads is None else threads,
                     device=device, repeat=DEFAULT_REPEAT if repeat is None else repeat)


def resolve_target(target: "str | Path | np.ndarray", n: int | None = None, *, solver: str = "auto",
                   seed: int | None = None, **options: Any) -> "Target":
    """The matrix to learn and how it was made: a transform name (with ``n`` and its options), a
    matrix file, or an array (checked like a file's contents: square, power-of-two size, finite)."""
    from .matrix_io import matrix_sha256
    from .targets import Target, resolve

    if isinstance(target, np.ndarray):
        used = sorted(k for k, v in options.items() if v is not None)
        if used:
            raise BflyError(f"options {', '.join(used)} apply to named transforms, not to a matrix")
        matrix = _square(target, n)
        return Target("matrix", matrix, {}, source=None, sha256=matrix_sha256(matrix))
    given = {**options, "seed": target_seed(str(target), solver, seed)}
    if given.get("filter") is not None:
        given["filter"] = str(given["filter"])
    return resolve(str(target), n, **given)


def provenance(tgt: "Target", seed: int | None) -> dict[str, Any]:
    """What lets ``verify`` rebuild the target: the transform and its options, or the source file
    and its hash (an in-memory matrix: the hash alone, ``transform = "matrix"``)."""
    meta: dict[str, Any] = {"transform": tgt.name, "transform_options": tgt.options,
                            "seed": seed if seed is not None else 0, "command": command_line()}
    if tgt.source:
        meta.update(transform="file", source=tgt.source, source_sha256=tgt.sha256)
    elif tgt.sha256:
        meta.update(transform="matrix", source=None, source_sha256=tgt.sha256)
    return meta


def analyze(target: "str | Path | np.ndarray", n: int | None = None, *, seed: int | None = None,
            **options: Any) -> dict[str, Any]:
    """What ``bfly analyze --json`` prints: per-level distances from rank-1 / rank-2 structure and
    the verdict, for a transform name (with ``n`` and its options), a matrix file or an array."""
    from .analysis import analyze as run_analysis

    tgt = resolve_target(target, n, seed=seed, **options)
    return {"transform": tgt.name, **run_analysis(tgt.matrix)}


def _square(matrix: np.ndarray, n: int | None) -> np.ndarray:
    """A square numeric matrix whose size is a power of two (and ``n`` if given)."""
    from .matrix_io import check_matrix

    matrix = check_matrix(np.asarray(matrix), "the matrix")
    if n is not None and n != matrix.shape[0]:
        raise BflyError(f"the matrix is {matrix.shape[0]} x {matrix.shape[0]} but n={n} was given; drop n or fix it")
    return matrix


def target_seed(target: str, solver: str, seed: int | None) -> int | None:
    """The seed a target gets: with the gradient solver it seeds the restarts, so a transform that
    draws nothing at random (dft, dct, ...) does not also reject it."""
    from bfly_cli import transforms

    if solver == "gradient" and target in transforms.names() and "seed" not in transforms.get(target).options:
        return None
    return seed


def solver_options_for(solver: str, budget: int | None, strict_budget: bool = False) -> dict[str, Any]:
    """``budget``/``strict_budget`` go to the auto solver; elsewhere they are a usage error (exit 2)."""
    from .solvers.auto import check_budget

    options: dict[str, Any] = {}
    if budget is not None:
        check_budget(budget)
        options["budget"] = budget
    if strict_budget:
        options["strict_budget"] = True
    if options and solver != "auto":
        flags = " and ".join(f"--{k.replace('_', '-')}" for k in options)
        raise BflyError(f"{flags} apply to --solver auto, not {solver!r}")
    return options


def gradient_options_for(solver: str, seed: int | None, **given: Any) -> dict[str, Any]:
    """``model/restarts/steps/lr/device`` (and ``seed``) for the gradient solver, refused elsewhere."""
    set_ = {k: v for k, v in given.items() if v is not None}
    if solver != "gradient":
        if set_:
            flags = ", ".join(f"--{k}" for k in sorted(set_))
            raise BflyError(f"{flags} apply to --solver gradient, not {solver!r}")
        return {}
    from .devices import check_device

    check_device(str(set_.get("device", "cpu")))
    return {**set_, "seed": seed if seed is not None else 0}


def command_line() -> str:
    """How the factors were asked for: the ``bfly`` command line, or the library call."""
    import shlex

    if sys.argv and Path(sys.argv[0]).name in ("bfly", "__main__.py"):
        return "bfly " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    return "bfly_cli.learn()"
