"""The fused load (LOAD8) against the same factors compiled with the separate gather, in one process (#15).

    python benchmarks/bench_fused_load.py [--sizes 256 1024 4096] [--batches 1 16 256] [--rounds 7]
                                          [--factors-dir /tmp/kfac]

Both plans are built from the same learned DFT (``bfly_cli.factorize`` of the unitary DFT, cached
in ``--factors-dir`` as ``dft{N}.h5``, cast to complex64); the gather plan is what
``kernel.compile_ops`` gives with ``fuse_load`` and ``canonical_inputs`` switched off. Times are
``_core.run`` into a preallocated output (no call overhead), the calling thread's CPU time,
best of 3 per round, medians over interleaved rounds; the ratio is taken per round. The last
column is the largest difference between the two results relative to the largest output.
"""

from __future__ import annotations

import argparse
import os
import statistics
from unittest import mock

import numpy as np

from bench_apply_vs_fftw import cpu_us, learned_dft  # the same timer and the same cached factors
from bfly_cli import kernel


def plans(n: int, cache_dir: str) -> tuple:
    f = kernel.cast_factors(learned_dft(n, cache_dir), np.complex64)
    fused_ops = kernel.compile_ops(f, True, False)
    with mock.patch.object(kernel, "fuse_load", lambda ops, n: ops), \
            mock.patch.object(kernel, "canonical_inputs", lambda p, t: (p, t)):
        gather_ops = kernel.compile_ops(f, True, False)
    return kernel._ext.Plan(n, True, False, fused_ops), kernel._ext.Plan(n, True, False, gather_ops), fused_ops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16, 256])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--factors-dir", default="/tmp/kfac")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f}; us per vector (thread CPU time), medians of {args.rounds} rounds")
    for n in args.sizes:
        fused, gather, ops = plans(n, args.factors_dir)
        print(f"N={n}: {', '.join(kernel.stage_kinds(ops))}")
        for batch in args.batches:
            rng = np.random.default_rng(batch)
            x = (rng.standard_normal((batch, n)) + 1j * rng.standard_normal((batch, n))).astype(np.complex64)
            y1, y2 = np.empty_like(x), np.empty_like(x)
            fused.run(x, y1, 1)
            gather.run(x, y2, 1)
            diff = float(np.abs(y1 - y2).max() / np.abs(y2).max())
            rounds = [(cpu_us(lambda: fused.run(x, y1, 1)) / batch, cpu_us(lambda: gather.run(x, y2, 1)) / batch)
                      for _ in range(args.rounds)]
            print(f"  batch {batch}: fused {statistics.median(a for a, _ in rounds):.3f}  "
                  f"gather {statistics.median(b for _, b in rounds):.3f}  "
                  f"fused/gather {statistics.median(a / b for a, b in rounds):.3f}  diff {diff:.1e}", flush=True)


if __name__ == "__main__":
    main()
