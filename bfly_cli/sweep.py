"""``bfly sweep``: learn (and optionally bench) every transform x size cell of a grid.

Why it is built this way:

* **Cells run in worker processes**, ``--jobs`` at a time (``python -m bfly_cli.sweep_worker``,
  each running one cell after another so imports are paid once per worker). A cell that hangs is
  killed with its worker at ``--timeout`` and a fresh worker takes over; one that crashes (even a
  segfault in a compiled kernel) is recorded as failed while the others go on.
* **One file per finished cell, written atomically.** ``DIR/cells/<transform>-<n>.json`` (plus the
  factor file ``<transform>-<n>.h5``) appears only when the cell is over, via temp file and
  rename, so Ctrl-C at any moment leaves only whole records, and a re-run skips the cells whose
  record says ``ok`` for the same solver (and bench, when asked). Failed and timed-out cells are
  tried again on a re-run, since the usual next step after a failure is a fix.
* **Deterministic shards.** Cells are ordered by size, then transform, and shard ``I/K`` takes
  every K-th cell starting at the I-th, so the expensive large sizes spread evenly over shards and
  any scheduler (CI matrix, Slurm array) can run ``--shard I/K`` with no coordination;
  :func:`merge` joins the outputs.

The summary files (``results.csv``, ``report.md``, PNGs) are made from the cell records by
:mod:`bfly_cli.sweep_report` and :mod:`bfly_cli.plots`, so merging shards is just copying records.
The worker processes themselves are :class:`bfly_cli.sweep_pool.Worker`.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from .errors import BflyError
from .report import jsonable
from .sizes import MAX_N, check_size
from .sweep_pool import Worker
from .sweep_records import CELLS_DIR, NAME, cell_file, cell_key, cells_dir, load_records, write_record
from .sweep_report import PAPER_TRANSFORMS, machine_description

DEFAULT_SIZES = "8..1024"
DEFAULT_TIMEOUT = 600.0
MAX_SHARDS = 100_000  # more slices than any scheduler runs; keeps I/K a plain machine integer
STATUS_OK, STATUS_FAILED, STATUS_TIMEOUT = "ok", "failed", "timeout"


@dataclass(frozen=True, order=True)
class Cell:
    """One grid point. Ordered by size first so shards and progress go from cheap to expensive."""

    n: int
    transform: str

    @property
    def key(self) -> str:
        """The file stem of this cell's outputs in ``DIR/cells``."""
        return f"{self.transform}-{self.n}"


@dataclass(frozen=True)
class SweepOptions:
    """Everything a sweep needs, validated by :func:`make_options` before any work starts."""

    out_dir: Path
    transforms: tuple[str, ...] = PAPER_TRANSFORMS
    sizes: tuple[int, ...] = (8, 16, 32, 64, 128, 256, 512, 1024)
    solver: str = "hierarchical"
    bench: bool = False
    jobs: int = 1
    shard: tuple[int, int] = (1, 1)
    timeout: float = DEFAULT_TIMEOUT


# ----------------------------------------------------------------------------- parsing options


def parse_sizes(text: str) -> tuple[int, ...]:
    """``"8..1024"`` (every power of two in the range) or ``"8,16,64"``; each a power of two >= 2."""
    text = text.replace(" ", "")
    if ".." in text:
        low_text, _, high_text = text.partition("..")
        low, high = _int(low_text, text), _int(high_text, text)
        if low > high:
            raise BflyError(f"--sizes {text}: the range is empty ({low} > {high}); write LOW..HIGH, e.g. 8..1024")
        _check_sweep_size(low), _check_sweep_size(high)
        sizes, n = [], low
        while n <= high:
            sizes.append(n)
            n *= 2
        return tuple(sizes)
    sizes = sorted({_int(part, text) for part in text.split(",") if part})
    if not sizes:
        raise BflyError("--sizes is empty; give a range like 8..1024 or a list like 8,16,64")
    for n in sizes:
        _check_sweep_size(n)
    return tuple(sizes)


def _check_sweep_size(n: int) -> None:
    """A power of two from 2 to MAX_N (a larger cell could only fail, after a worker started for it)."""
    check_size(n, "--sizes")
    if n > MAX_N:
        raise BflyError(f"--sizes: N = {n} is above the largest size bfly learns ({MAX_N}); use sizes up to {MAX_N}")


def _int(part: str, whole: str) -> int:
    try:
        return int(part)
    except ValueError:
        raise BflyError(f"--sizes {whole}: {part!r} is not a whole number; write 8..1024 or 8,16,64") from None


def parse_transforms(text: str | None) -> tuple[str, ...]:
    """Comma-separated transform names (default: the paper's eight), each checked against the zoo."""
    from bfly_cli import transforms

    if not text:
        return PAPER_TRANSFORMS
    names = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if not names:
        raise BflyError("--transforms is empty; give names from 'bfly list', e.g. dft,dct")
    for name in names:
        try:
            transforms.get(name)
        except transforms.UnknownTransform as exc:
            raise BflyError(f"--transforms: {exc}") from None
    return names


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"I/K"`` with 1 <= I <= K (1-based, as CI matrices and Slurm arrays ``--array=1-K`` count)."""
    if not text:
        return (1, 1)
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise BflyError(f"--shard {text!r}: write I/K, e.g. --shard 1/4 for the first of four slices") from None
    if count < 1 or not 1 <= index <= count:
        raise BflyError(f"--shard {text}: need 1 <= I <= K (the first slice is 1/{max(count, 1)})")
    if count > MAX_SHARDS:
        raise BflyError(f"--shard {text}: K is above {MAX_SHARDS:,}; use at most {MAX_SHARDS:,} slices")
    return (index, count)


def default_solver() -> str:
    """``auto`` when the solver table has it (it picks the cheapest exact structure), else hierarchical."""
    from .solvers import SOLVERS

    return "auto" if "auto" in SOLVERS else "hierarchical"


def check_solver(solver: str) -> str:
    """Fail before any cell runs when the solver name is unknown."""
    from .solvers import SOLVERS

    if solver not in SOLVERS:
        raise BflyError(f"unknown solver {solver!r}; choose one of: {', '.join(SOLVERS)}")
    return solver


def make_options(out_dir: Path, transforms: str | None, sizes: str, solver: str | None, bench: bool,
                 jobs: int | None, shard: str | None, timeout: float) -> SweepOptions:
    """Validate the command-line values into :class:`SweepOptions` (all errors exit 2, before work)."""
    from .limits import check

    if jobs is not None:
        check("--jobs", jobs)
    check("--timeout", timeout)
    options = SweepOptions(
        out_dir=Path(out_dir),
        transforms=parse_transforms(transforms),
        sizes=parse_sizes(sizes),
        solver=check_solver(solver or default_solver()),
        bench=bench,
        jobs=jobs or os.cpu_count() or 1,
        shard=parse_shard(shard),
        timeout=float(timeout),
    )
    check_output_dir(options.out_dir)  # last: nothing is created when another option is wrong
    return options


def check_output_dir(out_dir: Path) -> Path:
    """Create ``out_dir`` (and ``cells/``) now, so a bad ``-o`` fails before any cell runs."""
    if out_dir.exists() and not out_dir.is_dir():
        raise BflyError(f"-o {str(out_dir)!r} is a file; give a directory (it is created if missing)")
    try:
        cells_dir(out_dir).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BflyError(f"cannot create {str(out_dir)!r}: {exc.strerror}; choose another -o") from None
    if not os.access(cells_dir(out_dir), os.W_OK):
        raise BflyError(f"cannot write in {str(out_dir)!r}; choose another -o")
    return out_dir


# ----------------------------------------------------------------------------- the grid


def grid(transforms: Iterable[str], sizes: Iterable[int]) -> list[Cell]:
    """All cells, sorted by (n, transform position) so that order never depends on the machine."""
    order = {name: k for k, name in enumerate(transforms)}
    cells = [Cell(n, name) for name in order for n in sizes]
    return sorted(cells, key=lambda c: (c.n, order[c.transform]))


def shard_cells(cells: list[Cell], shard: tuple[int, int]) -> list[Cell]:
    """The I-th of K round-robin slices of ``cells`` (every size spread over all shards)."""
    index, count = shard
    return cells[index - 1 :: count]


# ----------------------------------------------------------------------------- records on disk
# (writing and checked reading: bfly_cli.sweep_records)


def record_path(out_dir: Path, cell: Cell) -> Path:
    """The JSON record of ``cell``; its presence means the cell finished (ok, failed or timeout)."""
    return cells_dir(out_dir) / f"{cell.key}.json"


def is_done(record: dict[str, Any] | None, options: SweepOptions) -> bool:
    """A cell is done when it succeeded with the same solver and has bench results if asked."""
    if not record or record.get("status") != STATUS_OK or record.get("solver") != options.solver:
        return False
    return not options.bench or record.get("bench_status") in ("ok", "unavailable")


# ----------------------------------------------------------------------------- one cell (worker side)


RECORD_KEYS = ("structure", "params", "rmse", "rel_error", "max_abs_error", "exact", "seconds", "dtype")


def run_cell(cell: Cell, solver: str, bench: bool, out_dir: Path) -> dict[str, Any]:
    """Learn one cell, save its factor file, optionally bench it; return its record (never raises)."""
    started = time.perf_counter()
    record: dict[str, Any] = {"transform": cell.transform, "n": cell.n, "solver": solver}
    try:
        factors = _learn_cell(cell, solver, out_dir)
        record.update({key: factors.meta.get(key) for key in RECORD_KEYS})
        record.update(status=STATUS_OK, error=None, file=f"{CELLS_DIR}/{cell.key}.h5",
                      route=factors.meta.get("auto_route"))  # which structure --solver auto settled on
        if bench:
            record.update(_bench_cell(factors))
    except BflyError as exc:
        record.update(status=STATUS_FAILED, error=str(exc))
    except Exception as exc:  # a bug in a solver must not stop the sweep; the record keeps the trace
        record.update(status=STATUS_FAILED, error=f"{type(exc).__name__}: {exc}",
                      traceback=traceback.format_exc(limit=8))
    record["wall_seconds"] = time.perf_counter() - started
    return record


def _learn_cell(cell: Cell, solver: str, out_dir: Path):
    from .h5format import save
    from .learning import learn
    from .targets import resolve

    target = resolve(cell.transform, cell.n)
    meta = {"transform": target.name, "transform_options": target.options, "seed": 0,
            "command": f"bfly sweep (cell {cell.key})"}
    factors = learn(target.matrix, solver=solver, meta=meta)
    save(factors, cells_dir(out_dir) / f"{cell.key}.h5", force=True)
    return factors


def _bench_cell(factors) -> dict[str, Any]:
    """Time the factors against dense GEMV and the fast library via :mod:`bfly_cli.bench_run`, if present."""
    try:
        from . import bench_run as bench
    except ImportError:
        return {"bench_status": "unavailable", "bench": None}
    try:
        return {"bench_status": "ok", "bench": bench_summary(bench, factors)}
    except Exception as exc:  # bench trouble must not lose the learned cell
        return {"bench_status": f"failed: {type(exc).__name__}: {exc}", "bench": None}


def bench_summary(bench_module, factors) -> dict[str, Any]:
    """Single-thread, batch-1 timings in µs per vector: butterfly, dense GEMV, fast library (FFT).

    One thread and one vector is the paper's CPU setting, and it keeps the ``--jobs`` cells that
    run side by side from competing for the same cores inside one measurement.
    """
    document = bench_module.run_bench(factors, batches=(1,), threads=1)
    us = document["results"][0]["us_per_vector"]
    methods = document.get("methods", {})
    return {
        "butterfly_us": us.get("butterfly"), "dense_us": us.get("dense"), "fft_us": us.get("fast"),
        "torch_us": us.get("torch"),
        "butterfly_name": methods.get("butterfly", {}).get("label"),
        "fft_name": methods.get("fast", {}).get("label") if us.get("fast") is not None else None,
    }


# ----------------------------------------------------------------------------- the runner (parent side)


def pending_cells(options: SweepOptions) -> tuple[list[Cell], list[Cell]]:
    """(this shard's cells, those of them not yet done) for ``options``."""
    mine = shard_cells(grid(options.transforms, options.sizes), options.shard)
    records = load_records(options.out_dir)
    todo = [cell for cell in mine if not is_done(records.get(cell.key), options)]
    return mine, todo


def run_sweep(options: SweepOptions, on_start: Callable[[Cell], None] | None = None,
              on_done: Callable[[Cell, dict], None] | None = None) -> list[dict[str, Any]]:
    """Run every not-yet-done cell of this shard, ``options.jobs`` at a time; return this shard's records.

    ``on_start``/``on_done`` let the CLI drive a progress bar; the library prints nothing (worker
    stderr, e.g. solver warnings, goes to ``DIR/sweep.log``). On KeyboardInterrupt the workers are
    killed and the interrupt propagates; finished cells stay on disk, so the next run resumes.
    """
    unsafe = [name for name in options.transforms if not NAME.fullmatch(str(name))]
    if unsafe:  # a cell's name becomes a file name: refuse it before any work, not after the cell ran
        raise BflyError(f"transform name {unsafe[0]!r} cannot name a cell file (lower-case letters, digits and _, "
                        "as 'bfly list' shows)")
    cells_dir(options.out_dir).mkdir(parents=True, exist_ok=True)
    mine, todo = pending_cells(options)
    queue = list(todo)
    workers: list[Worker] = []
    with open(Path(options.out_dir) / "sweep.log", "a") as log:
        try:
            while queue or any(w.job for w in workers):
                _assign(workers, queue, options, log, on_start)
                for worker, record in _collect(workers, options):
                    record["machine"] = machine_description()
                    write_record(options.out_dir, record)
                    if on_done:
                        on_done(Cell(int(record["n"]), record["transform"]), record)
        finally:
            for worker in workers:
                cell = worker.job
                worker.kill()
                if cell:
                    _remove_partial(options.out_dir, cell)
    records = load_records(options.out_dir)
    return [records[cell.key] for cell in mine if cell.key in records]


def _assign(workers: list[Worker], queue: list[Cell], options: SweepOptions, log, on_start) -> None:
    """Give queued cells to idle workers, starting workers up to ``options.jobs``."""
    workers[:] = [w for w in workers if w.process.poll() is None or w.job]
    while queue and len(workers) < min(options.jobs, len(queue) + sum(1 for w in workers if w.job)):
        workers.append(Worker(log))
    for worker in workers:
        if queue and worker.job is None:
            _remove_partial(options.out_dir, queue[0])  # leftovers of a run killed outright (kill -9, power loss)
            cell = queue.pop(0)
            worker.submit(cell, _request(cell, options), options.timeout)
            if on_start:
                on_start(cell)


def _request(cell: Cell, options: SweepOptions) -> dict[str, Any]:
    """What a worker needs to run ``cell`` (the JSON line :mod:`bfly_cli.sweep_worker` reads)."""
    return {"transform": cell.transform, "n": cell.n, "solver": options.solver,
            "bench": options.bench, "out_dir": str(options.out_dir)}


def _collect(workers: list[Worker], options: SweepOptions) -> list[tuple[Worker, dict[str, Any]]]:
    """Wait until a busy worker answers or a deadline passes; return the finished cells' records."""
    busy = [w for w in workers if w.job]
    if not busy:
        return []
    wait = max(0.0, min(w.deadline for w in busy) - time.monotonic())
    ready, _, _ = select.select([w.process.stdout for w in busy], [], [], wait)
    finished = []
    for worker in busy:
        cell, started = worker.job, worker.started
        if worker.process.stdout in ready:
            record = worker.receive()
            if record is None:
                worker.kill()
                _remove_partial(options.out_dir, cell)
                record = _failure(cell, options, STATUS_FAILED, started,
                                  f"the worker process died (exit code {worker.process.returncode}); see sweep.log")
            finished.append((worker, record))
        elif time.monotonic() >= worker.deadline:
            worker.kill()
            worker.job = None
            _remove_partial(options.out_dir, cell)
            finished.append((worker, _failure(cell, options, STATUS_TIMEOUT, started,
                                              f"no result within --timeout {options.timeout:g} s")))
    return finished


def _remove_partial(out_dir: Path, cell: Cell) -> None:
    """Delete the temp files of a write the killed worker left half done (atomic writes' leftovers)."""
    for tmp in cells_dir(out_dir).glob(f".{cell.key}.*.tmp"):
        try:
            tmp.unlink()
        except OSError:
            pass


def _failure(cell: Cell, options: SweepOptions, status: str, started: float, error: str) -> dict[str, Any]:
    """The record the parent writes for a cell whose worker could not write one."""
    return {"transform": cell.transform, "n": cell.n, "solver": options.solver, "status": status,
            "error": error, "wall_seconds": time.monotonic() - started}


# ----------------------------------------------------------------------------- merging shards


def merge(sources: list[Path], out_dir: Path) -> list[dict[str, Any]]:
    """Copy the cell records (and factor files) of shard directories into ``out_dir``.

    When two sources hold the same cell, an ``ok`` record wins over a failed one; between equals
    the later source on the command line wins, so re-running one shard and merging again updates
    it. The sources may come from other machines, so every record is checked before anything is
    written (:func:`bfly_cli.sweep_records.read_record`: one bad record stops the merge with exit
    2) and every copy lands inside ``out_dir/cells``. Returns every record now in ``out_dir``.
    """
    for source in sources:
        if not cells_dir(source).is_dir():
            raise BflyError(f"--merge: {str(source)!r} has no {CELLS_DIR}/ directory; is it a 'bfly sweep -o' output?")
    if any(Path(s).resolve() == Path(out_dir).resolve() for s in sources):
        raise BflyError("--merge: -o must be a new directory, not one of the inputs")
    chosen: dict[str, tuple[Path, dict]] = {}
    for source in sources:
        for key, record in load_records(source, strict=True).items():
            if key not in chosen or _rank(record) >= _rank(chosen[key][1]):
                chosen[key] = (Path(source), record)
    check_output_dir(Path(out_dir))  # after every record passed: a refused merge creates nothing
    for key, (source, record) in chosen.items():
        _copy_cell(source, out_dir, key, record)
    return list(load_records(out_dir).values())


def _rank(record: dict[str, Any]) -> int:
    return 1 if record.get("status") == STATUS_OK else 0


def _copy_cell(source: Path, out_dir: Path, key: str, record: dict[str, Any]) -> None:
    """Copy one checked record, and its factor file when it is a plain file (a link is not followed:
    it could point at any file the user can read), into ``out_dir/cells``."""
    from .safe_write import atomic_write

    h5 = cells_dir(source) / f"{cell_key(record['transform'], record['n'])}.h5"
    if record.get("status") == STATUS_OK and h5.is_file() and not h5.is_symlink():
        atomic_write(cell_file(out_dir, key, ".h5"), lambda tmp: shutil.copyfile(h5, tmp), force=True)
    write_record(out_dir, record)


# ----------------------------------------------------------------------------- summaries


@dataclass
class Summaries:
    """What :func:`write_summaries` produced: files written and, without matplotlib, why no PNGs."""

    files: list[Path]
    note: str | None


def write_summaries(out_dir: Path, records: list[dict[str, Any]]) -> Summaries:
    """Write ``results.csv``, the PNGs (when matplotlib is importable) and ``report.md`` for ``records``."""
    from . import plots, sweep_report

    out_dir = Path(out_dir)
    files = [sweep_report.write_csv(out_dir / "results.csv", records)]
    note = None
    images: list[Path] = []
    if not records:
        note = "no cells have finished yet"
    elif plots.have_matplotlib():
        images = plots.write_pngs(out_dir, records)
    else:
        note = f"No figures: matplotlib is not installed; {plots.INSTALL_HINT}"
    files += images
    files.append(sweep_report.write_report(out_dir / "report.md", records, [p.name for p in images], note))
    return Summaries(files, note)
