"""Every transform of the paper x N, learned with ``--solver auto``: structure, size, accuracy, time.

Each cell: structure, parameters, rmse (the paper's absolute measure), rel_error and solver
seconds, printed beside the paper's RMSE (the packaged ``bfly_cli/data/paper_rmse.json``).
``params`` counts stored numbers (a complex one once), ``real`` the same in real numbers against
the dense matrix's (``x dense``) and one complex B.P's (``x BP``, the parameter budget of the
approximation route). Exact transforms are also learned with their columns shuffled at random; legendre and
randn also get a ``--strict-budget`` cell (the budget caps exact structures too: it differs from
"plain" only where a non-compressive exact QP exists, N <= 16) and a ``--budget 2`` cell. Usage::

    python benchmarks/bench_transforms.py                 # N = 8 .. 1024
    python benchmarks/bench_transforms.py --large         # adds 4096 (and 8192 with --huge)
    python benchmarks/bench_transforms.py --only dct,dst --sizes 8,64
    python benchmarks/bench_transforms.py --only dct,dst,hartley --ortho   # + norm='ortho' rows
"""

from __future__ import annotations

import argparse

import numpy as np

from bfly_cli import transforms
from bfly_cli.learning import learn
from bfly_cli.solvers.auto import budget_real_params
from bfly_cli.sweep_report import paper_rmse

NAMES = ("dft", "dct", "dst", "convolution", "hadamard", "hartley", "legendre", "randn")
EXACT_NAMES = ("dft", "dct", "dst", "convolution", "hadamard", "hartley")
ORTHO_NAMES = ("dct", "dst")  # transforms with a norm="ortho" option


def main() -> None:
    args = _parse()
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else [8, 16, 32, 64, 128, 256, 512, 1024]
    if args.large:
        sizes.append(4096)
    if args.huge:
        sizes.append(8192)
    names = args.only.split(",") if args.only else NAMES
    print("| transform | N | variant | structure | params | real (x dense, x BP) | rmse | rel_error | seconds | paper rmse |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in names:
        for n in sizes:
            for variant, matrix, options in _variants(name, n, args.ortho):
                f = learn(matrix, solver="auto", solver_options=options)
                m = f.meta
                real = f"{m['real_params']:,} ({m['real_params'] / m['dense_real_params']:.2f}, " \
                       f"{m['real_params'] / budget_real_params(n, 1):.2f})"
                print(f"| {name} | {n} | {variant} | {m['structure']} ({m['auto_route']}) | {m['params']:,} | {real} | "
                      f"{m['rmse']:.1e} | {m['rel_error']:.1e} | {m['seconds']:.2f} | {_paper_cell(name, n)} |", flush=True)


def _variants(name: str, n: int, ortho: bool = False):
    """(label, matrix, solver options): plain; shuffled for exact transforms; strict budget and
    budget 2 otherwise;
    with ``ortho``, the orthonormal scaling of dct/dst, plain and shuffled, as well."""
    t = transforms.build(name, n)
    yield "plain", t, {}
    if name in EXACT_NAMES:
        yield "shuffled", t[:, np.random.default_rng(n).permutation(n)], {}
    else:
        yield "strict budget", t, {"strict_budget": True}
        yield "budget 2", t, {"budget": 2}
    if ortho and name in ORTHO_NAMES:
        t = transforms.build(name, n, norm="ortho")
        yield "ortho", t, {}
        yield "ortho shuffled", t[:, np.random.default_rng(n).permutation(n)], {}


def _paper_cell(name: str, n: int) -> str:
    value = paper_rmse(name, n)
    return "-" if value is None else f"{value:.1e}"


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", help="comma-separated N list (default 8..1024)")
    p.add_argument("--only", help="comma-separated transform names")
    p.add_argument("--large", action="store_true", help="add N = 4096")
    p.add_argument("--huge", action="store_true", help="add N = 8192")
    p.add_argument("--ortho", action="store_true", help="also the norm='ortho' dct/dst, plain and shuffled")
    return p.parse_args()


if __name__ == "__main__":
    main()
