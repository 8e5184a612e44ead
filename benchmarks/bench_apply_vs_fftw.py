"""Plan.apply and the cached-plan paths against FFTW's own execute(), complex64 DFT, one thread (#15).

    python benchmarks/bench_apply_vs_fftw.py [--sizes 256 1024 4096] [--batches 1 256] [--rounds 7]
                                             [--factors-dir /tmp/kfac] [--old /path/with/bfly_old]

For each N and batch, interleaved round by round in one process: ``Plan.apply`` (a complex64 plan
built once), ``f.apply(x)`` and, at batch 1, ``f @ x`` (both through the plan cache; ``f`` is the
learned factors cast to complex64 so the result is complex64, as FFTW's), and pyfftw's
``execute()`` of an FFTW_MEASURE plan (unnormalized: FFTW's own cost). ``--old DIR``: DIR holds an
older checkout's ``bfly_cli`` renamed ``bfly_old`` (with its built extension); its Plan.apply and
f.apply join the same rounds, so before/after ratios come from one process.

Times are the calling thread's CPU time (``time.thread_time``), best of 3 within a round, median
over rounds: on a shared machine wall-clock samples include time spent descheduled. Factors come
from ``bfly_cli.factorize`` of the unitary DFT matrix, cached in ``--factors-dir``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import sys
import time
import timeit
from typing import Any, Callable

import numpy as np

import bfly_cli
from bfly_cli import kernel


def learned(stem: str, build: Callable[[int], np.ndarray], n: int, cache_dir: str) -> Any:
    """The factors ``factorize`` finds for ``build(n)``, saved once per N as ``{stem}{n}.h5``."""
    path = os.path.join(cache_dir, f"{stem}{n}.h5")
    if not os.path.exists(path):
        os.makedirs(cache_dir, exist_ok=True)
        bfly_cli.save(bfly_cli.factorize(build(n)), path)
    return bfly_cli.load(path)


def learned_dft(n: int, cache_dir: str) -> Any:
    """The factors ``factorize`` finds for the unitary DFT, saved once per N."""
    return learned("dft", lambda size: np.fft.fft(np.eye(size), norm="ortho", axis=0), n, cache_dir)


def cpu_us(fn: Callable[[], object]) -> float:
    """Thread CPU microseconds per call: best of 3 runs of enough calls to last ~0.2 s."""
    timer = timeit.Timer(fn, timer=time.thread_time)
    number, _ = timer.autorange()
    return min(timer.repeat(3, number)) / number * 1e6


def candidates(n: int, batch: int, args: argparse.Namespace, old: Any) -> dict[str, Callable[[], object]]:
    import pyfftw

    f = learned_dft(n, args.factors_dir)
    f32 = kernel.cast_factors(f, np.complex64)
    plan = kernel.Plan(f, np.complex64)
    rng = np.random.default_rng(n + batch)
    shape = (n,) if batch == 1 else (batch, n)
    x = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)
    np.testing.assert_allclose(f32.apply(x), np.fft.fft(x, norm="ortho"), atol=1e-4)
    src = pyfftw.empty_aligned(shape, np.complex64)
    src[...] = x
    fftw = pyfftw.builders.fft(src, threads=1, planner_effort="FFTW_MEASURE")
    one = None if batch == 1 else 1  # batch 1 runs one thread anyway: time the call as users write it
    fns = {"Plan.apply": lambda: plan.apply(x, threads=one), "f.apply": lambda: f32.apply(x, threads=one)}
    if batch == 1:
        fns["f @ x"] = lambda: f32 @ x
    fns["FFTW execute"] = fftw.execute
    if old is not None:
        steps = [old.factors.Step(s.kind, s.data) for s in f.steps]
        old_f = old.factors.Factors(n, steps)
        old_f32 = old.kernel.cast_factors(old_f, np.complex64)
        old_plan = old.kernel.Plan(old_f, np.complex64)
        fns["old Plan.apply"] = lambda: old_plan.apply(x, threads=one)
        fns["old f.apply"] = lambda: old_f32.apply(x, threads=one)
        if batch == 1:
            fns["old f @ x"] = lambda: old_f32 @ x
    return fns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 256])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--factors-dir", default="/tmp/kfac")
    parser.add_argument("--old", default=None, help="directory holding an older bfly_cli renamed bfly_old")
    args = parser.parse_args()
    old = None
    if args.old:
        sys.path.insert(0, args.old)
        old = importlib.import_module("bfly_old")
        importlib.import_module("bfly_old.factors")
    print(f"load average {os.getloadavg()[0]:.1f}; us per vector (thread CPU time), medians of {args.rounds} rounds")
    for n in args.sizes:
        for batch in args.batches:
            fns = candidates(n, batch, args, old)
            samples: dict[str, list[float]] = {k: [] for k in fns}
            for _ in range(args.rounds):
                for name, fn in fns.items():
                    samples[name].append(cpu_us(fn) / batch)
            med = {k: statistics.median(v) for k, v in samples.items()}
            ratio = statistics.median([a / b for a, b in zip(samples["Plan.apply"], samples["FFTW execute"])])
            cells = "  ".join(f"{k} {v:.3f}" for k, v in med.items())
            print(f"N={n} batch={batch}: {cells}  Plan/FFTW {ratio:.2f}", flush=True)


if __name__ == "__main__":
    main()
