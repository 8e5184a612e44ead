"""Exactness of the closed-form B.P solver and its speed, through the library and the CLI path.

Prints, in one run:
1. rel_error / max_abs_error / rmse and solver seconds for dft (N = 8 .. 8192) and hadamard,
2. the same for a column-shuffled DFT and a random B.P saved as .npy files (N up to 4096), learned
   through the CLI path (file -> learn -> .h5) and re-read by an independent h5py+numpy reader,
3. `bfly learn dft --n 1024` solver time (median of repeats) beside pyfaust's
   `pyfaust.fact.butterfly(M, type='bbtree', perm='bitrev')` on the same matrix, when pyfaust is
   installed (`pip install 'bfly[bench]'`). pyfaust is *given* the bit-reversal permutation;
   bfly discovers its permutation from the matrix.

Usage: python benchmarks/bench_learn.py [--max-n 8192] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

import bfly_cli
from bfly_cli import transforms
from bfly_cli.factors import butterfly_multiply
from bfly_cli.targets import resolve


def independent_dense(path: Path) -> np.ndarray:
    """Rebuild the matrix from the file with h5py + numpy only (no bfly code)."""
    with h5py.File(path, "r") as handle:
        n = int(handle.attrs["n"])
        x = np.eye(n, dtype=complex)
        for k in range(len(handle["steps"])):
            group = handle["steps"][str(k)]
            kind = group.attrs["kind"]
            data = group["data"][()] if "data" in group else None
            if kind == "permutation":
                x = x[:, data]
            elif kind == "butterfly":
                for lev in range(data.shape[0]):
                    s = 1 << lev
                    v = x.reshape(n, n // (2 * s), 2, s)
                    t = data[lev].reshape(n // (2 * s), s, 2, 2)
                    y0 = t[..., 0, 0] * v[..., 0, :] + t[..., 0, 1] * v[..., 1, :]
                    y1 = t[..., 1, 0] * v[..., 0, :] + t[..., 1, 1] * v[..., 1, :]
                    x = np.stack([y0, y1], axis=-2).reshape(n, n)
            elif kind == "diagonal":
                x = x * data
            elif kind == "real":
                x = x.real
    return x.T


def rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def row(label: str, n: int, meta: dict, reread: float | None = None) -> str:
    extra = f"{reread:10.2e}" if reread is not None else " " * 10
    flag = "yes" if meta["rel_error"] <= 1e-12 else "NO"
    return (f"{label:<14}{n:>6} {meta['structure']:>5} {meta['rel_error']:10.2e} {meta['max_abs_error']:10.2e} "
            f"{meta['rmse']:10.2e} {extra} {meta['seconds']:8.3f}  {flag}")


def header() -> str:
    return f"{'target':<14}{'N':>6} {'str':>5} {'rel_error':>10} {'max_abs':>10} {'rmse':>10} {'reread':>10} {'seconds':>8}  exact"


def named_table(sizes: list[int]) -> None:
    print(header())
    for name in ("dft", "hadamard"):
        for n in sizes:
            f = bfly_cli.factorize(transforms.build(name, n), solver="hierarchical")
            print(row(name, n, f.meta))


def file_table(sizes: list[int], workdir: Path) -> None:
    print(header())
    rng = np.random.default_rng(0)
    for n in sizes:
        shuffled_dft = transforms.build("dft", n)[:, rng.permutation(n)]
        levels = n.bit_length() - 1
        tw = rng.standard_normal((levels, n // 2, 2, 2)) + 1j * rng.standard_normal((levels, n // 2, 2, 2))
        random_bp = butterfly_multiply(tw, np.eye(n)).T[:, rng.permutation(n)]
        for label, matrix in (("dft-shuffled", shuffled_dft), ("random-BP", random_bp)):
            src = workdir / f"{label}-{n}.npy"
            np.save(src, matrix)
            target = resolve(str(src))
            f = bfly_cli.factorize(target.matrix, solver="hierarchical", meta={"transform": "file", "source": str(src), "source_sha256": target.sha256})
            out = bfly_cli.save(f, workdir / f"{label}-{n}.h5", force=True)
            print(row(label, n, f.meta, rel(independent_dense(out), matrix)))


def timing_vs_pyfaust(n: int, repeat: int) -> None:
    matrix = transforms.build("dft", n)
    ours = [bfly_cli.factorize(matrix, solver="hierarchical").meta["seconds"] for _ in range(repeat)]
    print(f"bfly hierarchical (permutation discovered), dft N={n}: median {statistics.median(ours):.3f} s "
          f"over {repeat} runs (min {min(ours):.3f}, max {max(ours):.3f})")
    try:
        import warnings

        warnings.filterwarnings("ignore")
        import pyfaust.fact
    except ImportError:
        print("pyfaust not installed: pip install 'bfly[bench]' to print its time beside bfly's")
        return
    times, errs = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        faust = pyfaust.fact.butterfly(matrix, type="bbtree", perm="bitrev")
        times.append(time.perf_counter() - start)
        errs.append(rel(faust.toarray(), matrix))
    print(f"pyfaust butterfly(type='bbtree', perm='bitrev' given), same matrix: median {statistics.median(times):.3f} s "
          f"(rel_error {max(errs):.1e}); ratio pyfaust/bfly = {statistics.median(times) / statistics.median(ours):.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-n", type=int, default=8192)
    parser.add_argument("--max-file-n", type=int, default=4096)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    sizes = [1 << k for k in range(3, args.max_n.bit_length())]
    print("== named transforms (float64) ==")
    named_table(sizes)
    print("\n== matrix files (.npy) -> learn -> .h5 -> independent h5py+numpy reader ==")
    with tempfile.TemporaryDirectory() as tmp:
        file_table([n for n in sizes if n <= args.max_file_n], Path(tmp))
    print("\n== solver time at N = 1024 ==")
    timing_vs_pyfaust(1024, args.repeat)


if __name__ == "__main__":
    main()
