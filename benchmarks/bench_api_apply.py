"""Per-call cost of the library's apply paths against the kernel plan and scipy.fft (issue #14).

Run: ``python benchmarks/bench_api_apply.py [--sizes 256,1024,4096,16384] [--batches 1,64] [--rounds 7]``.

For complex128 DFT factors at each N and batch it times, in one process and interleaved round by
round (so every ratio compares like with like on a shared machine):

* ``Plan.apply``      the kernel plan built once by hand (``bfly_cli.kernel.Plan``): the floor;
* ``bfly_cli.apply``  the public function (a plan-cache lookup, then the plan);
* ``f.apply``         the method (the same cached plan, last axis);
* ``f @ x``           matrix semantics (columns are vectors: a transposed view in and out);
* ``scipy.fft``       ``scipy.fft.fft(x, norm="ortho", workers=1)`` on the same batch.

Every path runs one thread. It prints microseconds per call (median of the rounds; each round times
enough calls to last ~2 ms) and the ratio of each library path to ``Plan.apply``: the plan cache's
whole point is that this ratio is close to 1 (the issue asks <= 1.3 at batch 1, N = 1024).

The DFT factors are the radix-2 Cooley-Tukey chain in bfly's layout, built in closed form so that
N = 16384 needs no dense matrix and no solve (timing depends on N, dtype and structure, never on
the values); they are checked against scipy.fft before timing. A benchmark, never a test.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import numpy as np
import scipy.fft

import bfly_cli
from bfly_cli import kernel
from bfly_cli.factors import Factors, Step
from bfly_cli.layout import bit_reversal


def dft_factors(n: int) -> Factors:
    """Unitary DFT as B P: bit reversal, then stage s joins two size-s DFTs with w = e^{-i pi low/s}."""
    levels = n.bit_length() - 1
    tw = np.empty((levels, n // 2, 2, 2), np.complex128)
    for lev in range(levels):
        s = 1 << lev
        w = np.exp(-1j * np.pi * (np.arange(n // 2) % s) / s)
        tw[lev, :, 0, 0], tw[lev, :, 0, 1], tw[lev, :, 1, 0], tw[lev, :, 1, 1] = 1, w, 1, -w
    tw[-1] /= np.sqrt(n)
    return Factors(n, [Step("permutation", bit_reversal(n)), Step("butterfly", tw)])


def per_call_us(fn: Callable[[], object], sample_s: float = 2e-3) -> float:
    """Microseconds per call of ``fn``, over enough calls to last about ``sample_s``."""
    fn()
    calls = 1
    while True:
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= sample_s or calls >= 1 << 16:
            return elapsed / calls * 1e6
        calls *= 2


def measure(n: int, batch: int, rounds: int) -> dict[str, float]:
    """Median microseconds per call of every path at (n, batch)."""
    f = dft_factors(n)
    rng = np.random.default_rng(n + batch)
    rows = (rng.standard_normal((batch, n)) + 1j * rng.standard_normal((batch, n))) if batch > 1 else \
        rng.standard_normal(n) + 1j * rng.standard_normal(n)
    cols = np.ascontiguousarray(rows.T)
    want = scipy.fft.fft(rows, norm="ortho", axis=-1)
    assert np.allclose(f.apply(rows), want, atol=1e-10), "DFT factors disagree with scipy.fft"
    plan = kernel.Plan(f, np.complex128)
    paths: dict[str, Callable[[], object]] = {
        "Plan.apply": lambda: plan.apply(rows, threads=1),
        "bfly_cli.apply": lambda: bfly_cli.apply(f, rows, threads=1),
        "f.apply": lambda: f.apply(rows, threads=1),
        "f @ x": lambda: f @ cols,
        "scipy.fft": lambda: scipy.fft.fft(rows, norm="ortho", workers=1),
    }
    samples: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(rounds):
        for name, fn in paths.items():
            samples[name].append(per_call_us(fn))
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="256,1024,4096,16384")
    parser.add_argument("--batches", default="1,64")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    names = ["Plan.apply", "bfly_cli.apply", "f.apply", "f @ x", "scipy.fft"]
    print(f"# per-call microseconds, complex128 DFT, 1 thread, median of {args.rounds} interleaved rounds")
    print("| N | batch | " + " | ".join(names) + " | apply/Plan | f@x/Plan | f@x/scipy |")
    print("|---" * (len(names) + 5) + "|")
    for n in (int(s) for s in args.sizes.split(",")):
        for batch in (int(b) for b in args.batches.split(",")):
            us = measure(n, batch, args.rounds)
            cells = " | ".join(f"{us[name]:.1f}" for name in names)
            print(f"| {n} | {batch} | {cells} | {us['bfly_cli.apply'] / us['Plan.apply']:.2f} | "
                  f"{us['f @ x'] / us['Plan.apply']:.2f} | {us['f @ x'] / us['scipy.fft']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
