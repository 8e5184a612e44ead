"""The compiled kernel against scipy.fft, FFTW, pyfaust and dense, per transform, size, batch and threads.

Run: ``python benchmarks/bench_kernel.py [--transforms dft,hadamard,dct,convolution]
[--sizes 256,1024,4096] [--batches 1,16,256] [--threads 1,2] [--rounds 5] [--cache DIR] [--json FILE]
[--no-dense] [--no-faust] [--learn-dtype float64|float32]``

Prints, per transform and thread count, the table of issue #15: N, batch, then µs per vector
(median) of bfly (``kernel.Plan.apply``), scipy.fft, FFTW (pyfftw, FFTW_MEASURE), pyfaust and
dense (``x @ D.T`` via torch), then bfly/scipy and bfly/FFTW. Every figure is the median of
``--rounds`` interleaved rounds (all methods sampled once per round, rotating order) in this one
process, with the same thread count for every method; a figure whose spread is wide or whose
per-vector cost grows more than 3x with the batch is marked ``?`` and its ratios print as
``unstable`` (``bfly_cli.bench_timing`` has the rules). pyfftw and pyfaust are optional (the
``bench`` extra): their columns say ``n/a`` when missing. Run it on an idle machine (see
``uptime``); nothing else in the repository asserts on these numbers.

Factors come from ``bfly_cli.factorize`` of matrices built by scipy, learned in float64 (what
``bfly learn`` writes; ``--learn-dtype float32`` for single-precision learning) and run in single
precision:

* dft: ``scipy.linalg.dft(N, 'sqrtn')`` (``BP``, complex64); baselines ``scipy.fft.fft`` / FFTW fft (ortho).
* hadamard: ``scipy.linalg.hadamard(N) / sqrt(N)`` (``BP``, float32); baselines: the numpy WHT
  (scipy has no WHT; labelled "numpy WHT (not compiled)") in the scipy column, FFTW's size-2
  REDFT00 on each of the log2 N axes (a compiled WHT) in the FFTW column.
* dct: ``scipy.fft.dct(I, norm='ortho')`` (rank-2 ``QP``, float32); baselines scipy/FFTW dct.
* convolution: ``circulant(c) / sqrt(N)`` with ``c`` drawn from seed 0 (``RBPBP``, real float32
  input); baselines the rfft/irfft convolution with scipy or FFTW.

pyfaust: ``pyfaust.dft`` / ``pyfaust.wht`` (exact) for dft and hadamard, ``pyfaust.fact.butterfly``
of the dense matrix for the others (its own approximation: the ``pyfaust err`` line says how far).

Learning takes ~20-30 s per transform at N = 4096 on a 2-core machine and grows ~N^2 (N = 16384:
2.5 min and 13 GiB for the DFT, whose dense complex matrix alone is 4 GiB), so the default sizes
stop at 4096; pass ``--sizes 256,1024,4096,16384`` for the issue's full range. Learned factors are
cached as factor files in ``--cache`` (default: ``$TMPDIR/bfly-bench-kernel``), so a second run
starts at once. With more than one thread the table's ``vs 1 thread`` column is the same plan's
1-thread time over its T-thread time, both timed in the same interleaved rounds (a paired
speedup; the 1-thread table of a separate group is not paired with it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import scipy.fft
import scipy.linalg

import bfly_cli
from bfly_cli import bench_run as bench, kernel
from bfly_cli.bench_baselines import FFTW, fast_library
from bfly_cli.bench_timing import Method
from bfly_cli.errors import BflyError

TRANSFORMS = ("dft", "hadamard", "dct", "convolution")
OPTIONS = {"dft": {}, "hadamard": {}, "dct": {"norm": "ortho"}, "convolution": {"seed": 0}}
COLUMNS = ("bfly", "scipy", "fftw", "faust", "dense")
HEADERS = ("N", "batch", "bfly", "scipy.fft", "FFTW", "pyfaust", "dense", "bfly/scipy", "bfly/FFTW", "vs 1 thread", "note")


def target_matrix(name: str, n: int) -> np.ndarray:
    """The dense target, built by scipy (never by bfly's own transforms)."""
    if name == "dft":
        return scipy.linalg.dft(n, scale="sqrtn")
    if name == "hadamard":
        return scipy.linalg.hadamard(n) / math.sqrt(n)
    if name == "dct":
        return scipy.fft.dct(np.eye(n), axis=0, norm="ortho")
    return scipy.linalg.circulant(np.random.default_rng(0).standard_normal(n)) / math.sqrt(n)


def learned(name: str, n: int, cache: Path, dtype: str = "float64") -> bfly_cli.Factors:
    """``bfly_cli.factorize`` of the scipy matrix in ``dtype`` (float64: what ``bfly learn`` writes),
    cached as a factor file. :func:`main` rounds them to single precision: the issue's tables are
    complex64 and float32 runs."""
    path = cache / f"{name}-{n}-{dtype}.h5"
    if path.exists():
        return bfly_cli.load(path)
    print(f"  learning {name} N={n} in {dtype} (cached in {cache}) ...", file=sys.stderr, flush=True)
    factors = bfly_cli.factorize(target_matrix(name, n), dtype=dtype,
                                 meta={"transform": name, "transform_options": OPTIONS[name]})
    cache.mkdir(parents=True, exist_ok=True)
    bfly_cli.save(factors, path, force=True)
    return factors


def faust_method(name: str, factors: bfly_cli.Factors) -> Method:
    """pyfaust's own butterfly Faust of the same transform, or an unavailable Method saying why."""
    try:
        with warnings.catch_warnings():  # pyfaust warns about an optional dependency on import
            warnings.simplefilter("ignore")
            import pyfaust
            import pyfaust.fact
    except ImportError:
        return Method("faust", "pyfaust", None, "pyfaust not installed")
    n = factors.n
    if name == "dft":
        faust = pyfaust.dft(n, normed=True)
    elif name == "hadamard":
        faust = pyfaust.wht(n, normed=True)
    else:
        faust = pyfaust.fact.butterfly(factors.to_dense(), type="bbtree")
    dtype = bench.input_dtype(factors)
    with contextlib.suppress(Exception):  # pyfaust has float32 but no complex64: then it runs in double
        faust = faust.astype(dtype)

    def prepare(x: np.ndarray):
        xt = np.asfortranarray(x.T.astype(faust.dtype))  # its layout and dtype, converted outside the timing
        return lambda: faust @ xt

    return Method("faust", f"pyfaust {pyfaust.version()} ({np.dtype(faust.dtype)})", prepare,
                  to_numpy=lambda y: np.asarray(y).T)


def methods_for(name: str, factors: bfly_cli.Factors, threads: int, dense: bool, faust: bool = True) -> list[Method]:
    """bfly, scipy, FFTW, pyfaust and dense for one transform, all at ``threads`` threads."""
    dtype = bench.input_dtype(factors)
    real = dtype.kind == "f"
    butterfly, _ = bench.kernel_method(factors, threads, dtype)  # its label says when the reference stands in
    meta = {"transform": name, "transform_options": OPTIONS[name]}
    scipy_row = bench.fast_baseline(meta, factors.n, real, threads, library="scipy")
    if fast_library("auto") == FFTW:
        fftw_row = bench.fast_baseline(meta, factors.n, real, threads, library="fftw")
        if fftw_row.library != FFTW:  # a transform FFTW does not serve: no FFTW figure
            fftw_row = Method("fftw", "FFTW", None, f"FFTW does not serve this transform ({fftw_row.label})")
    else:
        fftw_row = Method("fftw", "FFTW", None, "pyfftw not installed")
    dense_row = bench.dense_method(factors, "cpu") if dense else Method("dense", "dense", None, "skipped (--no-dense)")
    faust_row = faust_method(name, factors) if faust else Method("faust", "pyfaust", None, "skipped (--no-faust)")
    rows = [butterfly, scipy_row, fftw_row, faust_row, dense_row]
    for key, method in zip(COLUMNS, rows):
        method.key = key
    return rows


def run_case(name: str, factors: bfly_cli.Factors, threads: int, batches: list[int], rounds: int,
             dense: bool, faust: bool = True) -> dict[str, Any]:
    """Agreement with the numpy reference, then interleaved timings at every batch size."""
    with bench.thread_limit(threads):
        methods = methods_for(name, factors, threads, dense, faust)
        dtype = bench.input_dtype(factors)
        agreement = bench.agreement(methods, factors, bench.make_input(2, factors.n, dtype))
        if threads > 1:  # the same plan at 1 thread in the same rounds: a paired speedup, not two runs' ratio
            single, _ = bench.kernel_method(factors, 1, dtype)
            single.key = "bfly_1t"
            methods.append(single)
        rows = bench.measure(methods, [bench.make_input(b, factors.n, dtype, seed=b) for b in batches], rounds)
    labels = {m.key: m.label if m.available else f"n/a: {m.reason}" for m in methods}
    return {"transform": name, "n": factors.n, "structure": factors.structure, "dtype": str(dtype),
            "threads": threads, "rounds": rounds, "labels": labels, "rel_diff": agreement, "rows": rows}


def table_lines(case: dict[str, Any]) -> list[list[str]]:
    """One printed row per batch: medians (``?`` = unstable), the two ratios, and the flags."""
    lines = []
    for row in case["rows"]:
        us, stability = row["us_per_vector"], row["stability"]
        cells = [str(case["n"]), str(row["batch"])]
        cells += [_figure(us[key], stability[key]) for key in COLUMNS]
        cells += [_ratio(us, stability, "bfly", "scipy"), _ratio(us, stability, "bfly", "fftw")]
        cells.append(_ratio(us, stability, "bfly_1t", "bfly") if "bfly_1t" in us else "")
        flags = [f"{key}: {', '.join(s['flags'])}" for key, s in stability.items() if s and s["unstable"]]
        cells.append("; ".join(flags))
        lines.append(cells)
    return lines


def _figure(value: float | None, stability: dict | None) -> str:
    if value is None:
        return "n/a"
    text = f"{value:.3g}" if value < 1000 else f"{value:,.0f}"
    return text + ("?" if stability["unstable"] else "")


def _ratio(us: dict, stability: dict, num: str, den: str) -> str:
    if us.get(num) is None or us.get(den) is None:
        return "n/a"
    if stability[num]["unstable"] or stability[den]["unstable"]:
        return "unstable"
    return f"{us[num] / us[den]:.2f}"


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transforms", default=",".join(TRANSFORMS), help="comma-separated subset of " + ",".join(TRANSFORMS))
    parser.add_argument("--sizes", type=_ints, default=[256, 1024, 4096], help="N values (powers of two), e.g. 256,1024")
    parser.add_argument("--batches", type=_ints, default=[1, 16, 256], help="batch sizes, e.g. 1,256")
    parser.add_argument("--threads", type=_ints, default=[1, 2], help="thread counts, e.g. 1,2")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per figure (median of them; >= 5 to quote)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "bfly-bench-kernel",
                        help="folder of cached learned factor files")
    parser.add_argument("--no-dense", action="store_true", help="skip the dense column (its matrix needs N^2 memory)")
    parser.add_argument("--no-faust", action="store_true",
                        help="skip the pyfaust column (for dct and convolution it factors the dense matrix itself: slow at N = 16384)")
    parser.add_argument("--learn-dtype", choices=("float64", "float32"), default="float64",
                        help="precision the factors are learned in (default float64, as bfly learn; plans run in single precision)")
    parser.add_argument("--json", type=Path, help="also write every figure with its spread to this JSON file")
    args = parser.parse_args(argv)
    args.transforms = [t for t in args.transforms.split(",") if t]
    unknown = sorted(set(args.transforms) - set(TRANSFORMS))
    if unknown or args.rounds < 1 or not args.sizes or not args.batches or min(args.threads, default=0) < 1:
        parser.error(f"choose transforms from {', '.join(TRANSFORMS)}, rounds >= 1, sizes/batches/threads given")
    return args


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    args = parse_args(argv)
    if not kernel.available():
        raise SystemExit("bench_kernel: compiled kernel not built; nothing to benchmark (pip install -e . with a C compiler)")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"bfly kernel benchmark: numpy {np.__version__}, scipy {scipy.__version__}, fast library {fast_library()}, "
          f"{kernel.default_threads()} cores, load average {load:.1f}")
    cases, unlearnable = [], set()
    for name in args.transforms:
        for threads in args.threads:
            group = []
            for n in args.sizes:
                if (name, n) in unlearnable:
                    continue
                try:
                    factors = learned(name, n, args.cache, args.learn_dtype)
                except BflyError as exc:  # e.g. a size whose route does not fit in this machine's memory
                    print(f"\n{name} N={n}: not benchmarked, the factors could not be learned here: {exc}")
                    unlearnable.add((name, n))
                    continue
                single = kernel.cast_factors(factors, np.float32)  # the tables are single-precision runs
                group.append(run_case(name, single, threads, args.batches, args.rounds, not args.no_dense, not args.no_faust))
            if group:
                _print_group(group)
            cases += group
    if args.json:
        args.json.write_text(json.dumps(cases, indent=1, default=float))
    return cases


def _print_group(cases: list[dict[str, Any]]) -> None:
    """One table per transform and thread count (all sizes), labels from its first size."""
    head = cases[0]
    print(f"\n{head['transform']} ({head['dtype']} input, {head['structure']}), {head['threads']} thread(s), "
          f"µs per vector, medians of {head['rounds']} interleaved rounds ('?': unstable)")
    for key in COLUMNS:
        diffs = [c["rel_diff"].get(key) for c in cases if c["rel_diff"].get(key) is not None]
        err = f"  (rel. diff vs reference <= {max(diffs):.1e})" if diffs else ""
        print(f"  {key:>5}: {head['labels'][key]}{err}")
    table = [list(HEADERS)] + [line for case in cases for line in table_lines(case)]
    widths = [max(len(line[k]) for line in table) for k in range(len(HEADERS))]
    for index, line in enumerate(table):
        print("  " + "  ".join(cell.rjust(w) if k < len(HEADERS) - 1 else cell for k, (cell, w) in enumerate(zip(line, widths))))
        if index == 0:
            print("  " + "  ".join("-" * w for w in widths))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
