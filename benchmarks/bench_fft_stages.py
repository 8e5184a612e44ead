"""Per-vector time of Plan.apply with FFT-form stages against the same plan with every stage
general (the kernel before #15's specialization: ``Plan(..., _special=False)``) and
scipy.fft.fft, complex64 DFT factors from ``bfly_cli.learn('dft', n=...)`` (above the size
``learn`` accepts on this machine: the radix-2 DIT FFT built from its formula, marked ``*``),
one thread, interleaved rounds in one process.

    python benchmarks/bench_fft_stages.py [--sizes 256 1024 4096 16384] [--batches 1 256] [--rounds 7]

Prints a markdown table of medians (microseconds per vector) and ratios from the same rounds.
Numbers mean something only on an otherwise idle machine; the load average is printed with them.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import scipy.fft

import bfly_cli
from bfly_cli import kernel
from bfly_cli.errors import BflyError
from bfly_cli.factors import Factors, Step


def per_vector_us(fn, batch: int, budget_s: float = 0.05) -> float:
    """Best-of-3 mean over enough calls to last about ``budget_s`` (one sample of one round)."""
    fn()
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-7)
    reps = max(1, int(budget_s / one))
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        best = min(best, (time.perf_counter() - t0) / reps)
    return best / batch * 1e6


def dft_factors(n: int) -> tuple[Factors, bool]:
    """``bfly learn dft`` factors, or the closed-form FFT chain when ``learn`` refuses ``n``
    (the dense matrix does not fit); the flag says which."""
    try:
        return bfly_cli.learn("dft", n=n), True
    except BflyError:
        levels = n.bit_length() - 1
        rev = np.array([int(format(i, f"0{levels}b")[::-1], 2) for i in range(n)])
        tw = np.empty((levels, n // 2, 2, 2), complex)
        for lev in range(levels):
            s = 1 << lev
            w = np.exp(-2j * np.pi * (np.arange(n // 2) % s) / (2 * s))
            tw[lev, :, 0, 0] = tw[lev, :, 1, 0] = 1
            tw[lev, :, 0, 1], tw[lev, :, 1, 1] = w, -w
        return Factors(n, [Step("permutation", rev), Step("butterfly", tw)]), False


def measure(n: int, batch: int, rounds: int) -> dict[str, float]:
    factors, learned = dft_factors(n)
    fast = kernel.Plan(factors, np.complex64)
    slow = kernel.Plan(factors, np.complex64, _special=False)
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((batch, n)) + 1j * rng.standard_normal((batch, n))).astype(np.complex64)
    out = np.empty_like(x)
    methods = {"general": lambda: slow.apply(x, out, threads=1),
               "fft stages": lambda: fast.apply(x, out, threads=1),
               "scipy.fft": lambda: scipy.fft.fft(x, axis=-1, workers=1)}
    samples: dict[str, list[float]] = {k: [] for k in methods}
    ratio_s, ratio_g = [], []
    for _ in range(rounds):
        t = {k: per_vector_us(f, batch) for k, f in methods.items()}
        for k, v in t.items():
            samples[k].append(v)
        ratio_g.append(t["general"] / t["fft stages"])
        ratio_s.append(t["fft stages"] / t["scipy.fft"])
    res = {k: float(np.median(v)) for k, v in samples.items()}
    res["speedup"] = float(np.median(ratio_g))
    res["vs scipy"] = float(np.median(ratio_s))
    res["learned"] = learned
    res["kinds"] = ", ".join(f"{k} {fast.stage_kinds.count(k)}" for k in dict.fromkeys(fast.stage_kinds))
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 1024, 4096, 16384])
    p.add_argument("--batches", type=int, nargs="+", default=[1, 256])
    p.add_argument("--rounds", type=int, default=7)
    a = p.parse_args()
    print(f"load average before: {os.getloadavg()}")
    print("| N | batch | general (us) | fft stages (us) | scipy.fft (us) | general/fft | fft/scipy |")
    print("|---|---|---|---|---|---|---|")
    for n in a.sizes:
        for b in a.batches:
            r = measure(n, b, a.rounds)
            print(f"| {n}{'' if r['learned'] else '*'} | {b} | {r['general']:.2f} | {r['fft stages']:.2f} | {r['scipy.fft']:.2f} | "
                  f"{r['speedup']:.2f} | {r['vs scipy']:.2f} |", flush=True)
    print(f"load average after: {os.getloadavg()}")
    print("stage kinds (last plan):", r["kinds"])


if __name__ == "__main__":
    main()
