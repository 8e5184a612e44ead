"""Solver speed on the exact transforms: seconds spent inside the solver, median of repeats.

For every transform x N x (plain, column-shuffled) it runs ``learn(matrix, solver=...)`` and prints
the solver seconds (``meta["seconds"]``: the solver alone, as ``bfly learn`` reports it), the
wall time of the whole ``learn()`` call (solver + error measurement), the route ``auto`` chose and
the per-route seconds it recorded. The machine may be shared: the load average is printed before
and after, so two runs can be compared honestly. Usage::

    python benchmarks/bench_solver_speed.py                      # N = 1024, 4096, all, auto
    python benchmarks/bench_solver_speed.py --sizes 1024 --only dft,convolution --repeats 1
    python benchmarks/bench_solver_speed.py --solver hierarchical --only dft,hadamard
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from bfly_cli import transforms
from bfly_cli.learning import learn

EXACT_NAMES = ("dft", "dct", "dst", "convolution", "hadamard", "hartley")


def main() -> None:
    args = _parse()
    names = args.only.split(",") if args.only else EXACT_NAMES
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"load average before: {_load()}  (solver={args.solver}, repeats={args.repeats})")
    print("| transform | N | variant | route | solver s (median) | learn() wall s | rel_error | per-route s |")
    print("|---|---|---|---|---|---|---|---|")
    for name in names:
        for n in sizes:
            for variant, matrix in _variants(name, n):
                print(_row(name, n, variant, matrix, args.solver, args.repeats), flush=True)
    print(f"load average after: {_load()}")


def _row(name: str, n: int, variant: str, matrix: np.ndarray, solver: str, repeats: int) -> str:
    """One table row: medians over ``repeats`` runs of the same matrix."""
    solver_s, wall_s = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        factors = learn(matrix, solver=solver)
        wall_s.append(time.perf_counter() - start)
        solver_s.append(factors.meta["seconds"])
    meta = factors.meta
    route = meta.get("auto_route", solver)
    per_route = ", ".join(f"{t['route']} {t.get('seconds', '-')}" for t in meta.get("auto_tried", []))
    return (f"| {name} | {n} | {variant} | {route} | {statistics.median(solver_s):.2f} | "
            f"{statistics.median(wall_s):.2f} | {meta['rel_error']:.1e} | {per_route} |")


def _variants(name: str, n: int):
    """The plain matrix and the same with its columns shuffled by a seeded permutation."""
    t = transforms.build(name, n)
    yield "plain", t
    yield "shuffled", t[:, np.random.default_rng(n).permutation(n)]


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="1024,4096", help="comma-separated N (powers of two)")
    p.add_argument("--only", default="", help="comma-separated transform names (default: the six exact ones)")
    p.add_argument("--solver", default="auto", help="solver passed to learn() (default auto)")
    p.add_argument("--repeats", type=int, default=3, help="runs per cell; the median is printed")
    return p.parse_args()


if __name__ == "__main__":
    main()
