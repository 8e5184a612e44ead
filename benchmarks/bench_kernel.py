"""Speed of the compiled kernel against scipy.fft and dense GEMV, single- and multithreaded.

Run: ``python benchmarks/bench_kernel.py [--repeat R]``. Prints one table; every ratio is measured
in this one process as medians of R samples taken alternately (bfly, reference, bfly, ...), each
sample timing enough calls to last about 2 ms, because absolute timings on a shared machine are
noisy: trust the ratios more than the microseconds. The multithread row needs idle cores to mean
anything (check ``uptime``). Never used in tests.

Factors used (the kernel's speed depends on N, dtype and step structure, never on the values):

* DFT: the exact radix-2 Cooley-Tukey factors in bfly's layout (bit-reversal permutation, then
  twiddles [[1, w], [1, -w]]), built in closed form so N = 16384 needs no dense matrix; checked
  against scipy.fft.fft before timing. complex64.
* DCT: a real BP chain, float32, the structure ``bfly learn dct`` produces (random values: the
  solver needs minutes at N = 4096 and gigabytes at 16384, and the values do not change timing).
* Dense GEMV: the same factors' reconstructed matrix, same dtype, ``M @ x`` with BLAS limited to
  the same thread count (threadpoolctl if installed, else OPENBLAS/OMP/MKL_NUM_THREADS=1 set
  before numpy loads).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Callable

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # single-thread BLAS for GEMV, unless threadpoolctl overrides

import numpy as np  # noqa: E402
import scipy.fft  # noqa: E402

from bfly_cli import kernel  # noqa: E402
from bfly_cli.factors import Factors, Step  # noqa: E402


def dft_factors(n: int) -> Factors:
    """Unitary DFT as B P: bit-reversal, then stage s joins two size-s DFTs with w = e^{-i pi low/s}."""
    levels = n.bit_length() - 1
    perm = np.zeros(n, dtype=np.int64)
    for bit in range(levels):
        perm |= ((np.arange(n) >> bit) & 1) << (levels - 1 - bit)
    tw = np.empty((levels, n // 2, 2, 2), np.complex128)
    for lev in range(levels):
        s = 1 << lev
        w = np.exp(-1j * np.pi * (np.arange(n // 2) % s) / s)
        tw[lev, :, 0, 0], tw[lev, :, 0, 1], tw[lev, :, 1, 0], tw[lev, :, 1, 1] = 1, w, 1, -w
    tw[-1] /= np.sqrt(n)
    return Factors(n, [Step("permutation", perm), Step("butterfly", tw)])


def real_bp_factors(n: int, rng: np.random.Generator) -> Factors:
    levels = n.bit_length() - 1
    return Factors(n, [Step("permutation", rng.permutation(n)),
                       Step("butterfly", rng.standard_normal((levels, n // 2, 2, 2)) / np.sqrt(2))])


def _inner_count(fn: Callable[[], object], sample_s: float = 2e-3) -> int:
    """Calls per sample so that one sample lasts about ``sample_s`` (timer noise negligible)."""
    fn()
    inner = 1
    while inner < 1 << 16:
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        if time.perf_counter() - start >= sample_s:
            break
        inner *= 2
    return inner


def _sample(fn: Callable[[], object], inner: int) -> float:
    start = time.perf_counter()
    for _ in range(inner):
        fn()
    return (time.perf_counter() - start) / inner


def paired_us(ours: Callable[[], object], ref: Callable[[], object], repeat: int,
              sample_s: float = 2e-3) -> tuple[float, float]:
    """Median µs per call of each, sampled alternately (ours, ref, ours, ref, ...) so that both see
    the same machine load; on a shared machine that is what keeps the ratio meaningful."""
    n_ours, n_ref = _inner_count(ours, sample_s), _inner_count(ref, sample_s)
    a, b = [], []
    for _ in range(repeat):
        a.append(_sample(ours, n_ours))
        b.append(_sample(ref, n_ref))
    return float(np.median(a)) * 1e6, float(np.median(b)) * 1e6


def blas_threads(count: int):
    """A context that limits BLAS threads (no-op without threadpoolctl: the env vars already did)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(count)


def complex_vectors(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)


def rows_vs_fft(repeat: int, rng: np.random.Generator) -> list[tuple]:
    rows = []
    for n in (1024, 4096, 16384):
        plan = kernel.Plan(dft_factors(n), np.complex64)
        x = complex_vectors((n,), rng)
        out = np.empty_like(x)
        err = np.abs(plan.apply(x) - scipy.fft.fft(x) / np.sqrt(n)).max() / np.abs(x).max()
        assert err < 1e-4, f"DFT factors wrong at N={n}: {err}"
        ours, ref = paired_us(lambda: plan.apply(x, out, threads=1), lambda: scipy.fft.fft(x), repeat)
        rows.append((f"DFT c64 N={n} batch 1, 1 thread", ours, "scipy.fft.fft", ref, ours / ref, "bfly/ref <= 1.5"))
    for n in (1024, 4096, 16384):
        plan = kernel.Plan(real_bp_factors(n, rng), np.float32)
        x = rng.standard_normal(n).astype(np.float32)
        out = np.empty_like(x)
        ours, ref = paired_us(lambda: plan.apply(x, out, threads=1), lambda: scipy.fft.dct(x), repeat)
        rows.append((f"DCT(BP) f32 N={n} batch 1, 1 thread", ours, "scipy.fft.dct", ref, ours / ref, "bfly/ref <= 3"))
    return rows


def rows_vs_gemv(repeat: int, rng: np.random.Generator) -> list[tuple]:
    rows = []
    for n in (256, 4096):
        factors = real_bp_factors(n, rng)
        plan = kernel.Plan(factors, np.float32)
        dense = factors.to_dense().astype(np.float32)
        x = rng.standard_normal(n).astype(np.float32)
        out = np.empty_like(x)
        with blas_threads(1):
            ours, ref = paired_us(lambda: plan.apply(x, out, threads=1), lambda: dense @ x, repeat)
        target = ">= 100" if n == 4096 else "> 1"
        rows.append((f"BP f32 N={n} batch 1, 1 thread", ours, "dense GEMV", ref, ref / ours, f"ref/bfly {target}"))
    return rows


def rows_batch(repeat: int, rng: np.random.Generator) -> list[tuple]:
    rows = []
    threads = kernel.default_threads()
    for n in (1024, 4096):
        plan = kernel.Plan(dft_factors(n), np.complex64)
        x = complex_vectors((256, n), rng)
        out = np.empty_like(x)
        one, ref = paired_us(lambda: plan.apply(x, out, threads=1), lambda: scipy.fft.fft(x, workers=1), repeat)
        one, ref = one / 256, ref / 256
        rows.append((f"DFT c64 N={n} batch 256, 1 thread", one, "scipy.fft.fft", ref, one / ref, "bfly/ref <= 3"))
        # 10 ms samples (several calls): throughput of back-to-back calls, as in a batch loop. The
        # kernel's workers sleep during a 1-thread sample, so the first call of each threaded
        # sample pays their wake-up; with 2 ms samples (one call) that would be every call.
        many, one = paired_us(lambda: plan.apply(x, out, threads=threads), lambda: plan.apply(x, out, threads=1),
                              repeat, sample_s=10e-3)
        many, one = many / 256, one / 256
        rows.append((f"DFT c64 N={n} batch 256, {threads} threads", many, "bfly 1 thread", one, one / many,
                     "speedup >= 1.6 (2 cores)"))
    return rows


def print_table(rows: list[tuple]) -> None:
    head = ("case", "bfly us/vec", "reference", "ref us/vec", "ratio", "target")
    table = [head] + [(c, f"{a:.2f}", r, f"{b:.2f}", f"{q:.2f}", t) for c, a, r, b, q, t in rows]
    widths = [max(len(row[k]) for row in table) for k in range(len(head))]
    for k, row in enumerate(table):
        print("  ".join(cell.ljust(w) if j in (0, 2, 5) else cell.rjust(w) for j, (cell, w) in enumerate(zip(row, widths))))
        if k == 0:
            print("  ".join("-" * w for w in widths))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15, help="samples per timing (median taken)")
    args = parser.parse_args()
    if not kernel.available():
        sys.exit("bfly: compiled kernel not built; nothing to benchmark (pip install -e . with a C compiler)")
    rng = np.random.default_rng(0)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"bfly kernel benchmark: numpy {np.__version__}, scipy {scipy.__version__}, "
          f"{kernel.default_threads()} cores available, load average {load:.1f}, medians of {args.repeat} paired samples")
    print_table(rows_vs_fft(args.repeat, rng) + rows_vs_gemv(args.repeat, rng) + rows_batch(args.repeat, rng))
    print("ratio: bfly/ref for time comparisons (lower is better), ref/bfly for speedups (higher is better)")


if __name__ == "__main__":
    main()
