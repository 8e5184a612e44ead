"""What the unit form of rank2 stages gains: a learned DCT (``QP``) with and without it, beside scipy.fft.dct.

    python benchmarks/bench_rank2_unit.py [--sizes 256 1024 4096] [--batches 1 256] [--rounds 7]
                                          [--dtype float32] [--factors-dir /tmp/kfac]

For each N and batch, interleaved round by round in one process: ``Plan.apply`` of the plan as
built (unit-form blocks where :mod:`bfly_cli.kernel_rank2` finds them), of the same factors with
``_special=False`` (every rank2 stage general: 16 multiply-adds per pair), and
``scipy.fft.dct(x, norm="ortho", workers=1)``. Times are the calling thread's CPU time, best of 3
within a round, median over rounds (``bench_apply_vs_fftw.cpu_us``); ratios are per round. The
factors are ``bfly_cli.factorize`` of ``scipy.fft.dct(I, norm="ortho")`` (float64), cached in
``--factors-dir``. Each plan's ``stage_kinds`` is printed once, so the share of unit blocks per
stage shows.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

import numpy as np
import scipy.fft

import bfly_cli
from bfly_cli import kernel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_apply_vs_fftw import cpu_us, learned  # noqa: E402  (the same timer and cache as the other kernel benches)


def learned_dct(n: int, cache_dir: str) -> bfly_cli.Factors:
    """The factors ``factorize`` finds for the orthonormal DCT-II, saved once per N."""
    return learned("dct", lambda size: scipy.fft.dct(np.eye(size), axis=0, norm="ortho"), n, cache_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 256])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--factors-dir", default="/tmp/kfac")
    args = parser.parse_args()
    dtype = np.dtype(args.dtype)
    print(f"load average {os.getloadavg()[0]:.1f}; us per vector (thread CPU time), {dtype}, "
          f"medians of {args.rounds} rounds")
    for n in args.sizes:
        factors = learned_dct(n, args.factors_dir)
        unit, general = kernel.Plan(factors, dtype), kernel.Plan(factors, dtype, _special=False)
        print(f"N={n} stages: {', '.join(unit.stage_kinds)}")
        for batch in args.batches:
            x = np.random.default_rng(n + batch).standard_normal((batch, n)).astype(dtype)
            want = scipy.fft.dct(x.astype(np.float64), norm="ortho")
            assert np.linalg.norm(unit.apply(x) - want) <= 1e-5 * np.linalg.norm(want)
            one = None if batch == 1 else 1  # batch 1 runs one thread anyway: time the call as users write it
            fns = {"unit form": lambda: unit.apply(x, threads=one), "general": lambda: general.apply(x, threads=one),
                   "scipy dct": lambda: scipy.fft.dct(x, norm="ortho", workers=1)}
            samples: dict[str, list[float]] = {k: [] for k in fns}
            for _ in range(args.rounds):
                for name, fn in fns.items():
                    samples[name].append(cpu_us(fn) / batch)
            med = {k: statistics.median(v) for k, v in samples.items()}

            def ratio(a: str, b: str) -> float:
                return statistics.median([u / v for u, v in zip(samples[a], samples[b])])

            cells = "  ".join(f"{k} {v:.3f}" for k, v in med.items())
            print(f"N={n} batch={batch}: {cells}  unit/general {ratio('unit form', 'general'):.2f}  "
                  f"unit/scipy {ratio('unit form', 'scipy dct'):.2f}  general/scipy {ratio('general', 'scipy dct'):.2f}",
                  flush=True)


if __name__ == "__main__":
    main()
