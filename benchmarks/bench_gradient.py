"""The gradient solver (``--solver gradient``) from random initialization, beside the paper.

For each transform and size: success rate over seeds (rel_error <= --target after the float64
polish), median restarts and median wall seconds of the successful runs, the final relative error
(median), the paper's RMSE and its trial budget beside them, and which twiddle model the
successful runs returned (``complex``: the chain itself, read through ``Re`` for a real target;
``real``; ``rank2``: the real rank-2 model the learner uses for rank-2 orders; ``mirror``: the
outside-in BPBP fit). The paper's RMSE comes from the packaged data (``bfly_cli/data/paper_rmse.json``).
Run small on a shared machine:

    python benchmarks/bench_gradient.py --sizes 8,16 --seeds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from bfly_cli import transforms
from bfly_cli.learning import learn
from bfly_cli.sweep_report import paper_rmse

CELLS = {"dft": "BP", "hadamard": "BP", "hartley": "BP", "dct": "BPP", "dst": "BPP", "convolution": "BPBP"}
PAPER_TRIALS = "20-160"  # the paper's random trials per size (Hyperband, 8 GPUs)


def run_cell(name: str, n: int, seeds: int, restarts: int, steps: int | None, target: float,
             time_limit: float | None, first_seed: int = 0) -> dict:
    """Learn ``name`` at size ``n`` once per seed; summarize successes, restarts and seconds.

    ``time_limit`` stops a run from starting another restart after that many seconds (a run
    that is cut off that way and has not succeeded counts as a failure).
    """
    matrix = transforms.build(name, n)
    runs = []
    for seed in range(first_seed, first_seed + seeds):
        start = time.perf_counter()
        options = {"model": CELLS[name], "restarts": restarts, "seed": seed, "target": target,
                   "time_limit": time_limit}
        if steps is not None:
            options["steps"] = steps
        factors = learn(matrix, solver="gradient", solver_options=options)
        runs.append({"ok": factors.meta["rel_error"] <= target, "restarts": factors.meta["restarts_used"],
                     "seconds": time.perf_counter() - start, "rel": factors.meta["rel_error"],
                     "rmse": factors.meta["rmse"], "fitted": factors.meta["solver_log"][-1].get("fitted", "?")})
    good = [r for r in runs if r["ok"]]
    return {
        "transform": name, "n": n, "model": CELLS[name], "success": f"{len(good)}/{len(runs)}",
        "median_restarts": statistics.median(r["restarts"] for r in good) if good else None,
        "median_seconds": statistics.median(r["seconds"] for r in good) if good else None,
        "max_seconds": max(r["seconds"] for r in runs),
        "median_rel_error": statistics.median(r["rel"] for r in runs),
        "median_rmse": statistics.median(r["rmse"] for r in runs),
        "paper_rmse": paper_rmse(name, n),
        "fitted": _fitted_summary(good),
    }


def _fitted_summary(good: list[dict]) -> str:
    """Which twiddle model the successful runs returned, e.g. ``rank2 10`` or ``complex 7, rank2 3``."""
    counts: dict[str, int] = {}
    for run in good:
        counts[run["fitted"]] = counts.get(run["fitted"], 0) + 1
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "-"


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if 1e-2 <= abs(value) < 1e4 else f"{value:.1e}"
    return str(value)


def print_table(rows: list[dict]) -> None:
    cols = ["transform", "n", "model", "success", "median_restarts", "median_seconds", "max_seconds", "median_rel_error",
            "median_rmse", "paper_rmse", "fitted"]
    print("| " + " | ".join(cols) + " | paper trials |")
    print("|" + "---|" * (len(cols) + 1))
    for row in rows:
        print("| " + " | ".join(_fmt(row[c]) for c in cols) + f" | {PAPER_TRIALS} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transforms", default="dft,hadamard,hartley,dct,dst,convolution")
    parser.add_argument("--sizes", default="8,16,32,64,128,256")
    parser.add_argument("--conv-max", type=int, default=64, help="largest N for convolution (BPBP)")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. first-seed+seeds-1")
    parser.add_argument("--restarts", type=int, default=8)
    parser.add_argument("--steps", type=int, default=None, help="Adam steps (default: the solver's)")
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds per run before no new restart")
    parser.add_argument("--target", type=float, default=1e-10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"load average at start: {os.getloadavg()}", flush=True)
    rows = []
    for name in args.transforms.split(","):
        for n in (int(s) for s in args.sizes.split(",")):
            if name == "convolution" and n > args.conv_max:
                continue
            rows.append(run_cell(name, n, args.seeds, args.restarts, args.steps, args.target, args.time_limit,
                                 args.first_seed))
            print(json.dumps(rows[-1]), flush=True)
    print_table(rows)
    print(f"load average at end: {os.getloadavg()}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
