"""The ``gradient`` solver: the seed paper's differentiable learner, made reliable.

One *restart* is the paper's trial: a random :class:`~bfly_cli.torch_butterfly.ButterflyChain`
(``BP``, ``BPP`` or ``BPBP``; complex twiddles, read out through ``Re`` for a real target, as the
paper compared real parts) trained with Adam on the relative squared error of the whole matrix,
its relaxed permutations then rounded to hard ones. What follows is beyond the paper:

1. **Closed-form repair.** Rounding is where trials are lost: one wrong choice among the
   3 (L-1) per permutation ruins the fit. For ``BP`` and ``BPP`` the rounded choices are repaired
   (:mod:`.order_route`) by :mod:`.choice_repair`, which scores a hard order exactly by the
   block-rank tail energy of the hierarchical splits (rank 1 for a butterfly, rank 2 for ``Re``
   of a complex one) and searches level by level, keeping the levels the relaxation got right.
   ``BPBP`` has no such score: it is fitted from the outside in (:mod:`.bpbp_route`, assuming a
   bit-reversal middle permutation), else its single-choice flips are scored by a short float64
   L-BFGS fit (:mod:`.flip_search`).
2. **Twiddle fit and float64 polish.** With the permutations fixed, the relaxed twiddles and a
   few fresh random sets get a short float64 L-BFGS each; the best goes on to L-BFGS and
   Levenberg-Marquardt in float64, to the target (default 1e-10), keeping the best iterate.
   A real target whose order needs rank 2 is fitted by the real rank-2 model instead (random
   stages, L-BFGS, then alternating least squares: :mod:`.rank2_fit`), saved as ``[permutation,
   rank2]``: ``Re`` of a complex butterfly has local minima there that no optimizer tried escaped.

The relaxed phase is :mod:`.relaxed`; the knobs are :class:`~.options.GradientOptions`.
Restarts draw their seed and learning rate (log-uniform) from ``seed`` and stop as soon as one
reaches the target. Everything is deterministic for a given ``seed`` on the CPU. The solver sees
only the matrix. Progress goes through an optional callback (the CLI draws a rich bar from it), so
this module neither prints nor imports rich.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np

from ...factors import Step
from ..numerics import cast_steps
from .bpbp_route import fit_bpbp
from .choice_repair import EXACT
from .flip_search import round_and_search
from .options import GradientOptions, check_options
from .order_route import fit_orders
from .refine import refine_steps
from .relaxed import adam
from .restart import FIT_OK, Reporter, Restart, RouteResult

_HOPELESS_ITERS = 100  # L-BFGS iterations of the polish of a restart whose exact orders all failed
_NEWTON_BELOW = 0.1  # Levenberg-Marquardt runs from this close (relative squared error); it often
# gets a stalled Re-readout fit out of L-BFGS's plateau, but costs much more per step


@dataclass
class RestartRecord:
    """One line of the per-restart log (stored as ``solver_log``)."""

    restart: int
    seed: int
    lr: float
    steps: int
    relaxed_loss: float
    flips: int  # 0/1 choices the repair changed in the rounded permutations
    search_score: float  # closed-form tail energy of the repaired order (nan for BPBP)
    fit_tries: int  # twiddle sets fitted before the polish
    orders: int  # exact-scoring orders whose twiddles were fitted
    fitted: str  # the model of the result: "complex" (Re of it for a real target), "real", "rank2" or "mirror"
    final_loss: float
    rel_error: float
    seconds: float
    success: bool


def solve_gradient(matrix: np.ndarray, **options: Any) -> tuple[list[Step], dict[str, Any]]:
    """Learn factors of ``matrix``; returns ``(steps, extra_meta)`` for :func:`bfly_cli.learn`."""
    import torch

    opts = check_options(GradientOptions(**options), matrix)
    target = torch.as_tensor(np.ascontiguousarray(np.asarray(matrix).T), device=opts.device)
    target = target.to(torch.complex128 if target.is_complex() else torch.float64)
    best: tuple[float, list[Step]] | None = None
    log: list[RestartRecord] = []
    began = time.perf_counter()
    failed: set[bytes] = set()  # orders (up to gauge) whose twiddle fits failed: never tried again
    for k in range(opts.restarts):
        record, steps = _restart(target, opts, k, failed)
        log.append(record)
        if best is None or record.final_loss < best[0]:
            best = (record.final_loss, steps)
        if record.success or (opts.time_limit is not None and time.perf_counter() - began >= opts.time_limit):
            break
    steps = cast_steps(best[1], np.asarray(matrix).dtype)
    extra = {
        "model": opts.model,
        "restarts_used": len(log),
        "solver_seed": opts.seed,
        "solver_device": opts.device,
        "solver_log": [asdict(r) for r in log],
    }
    return steps, extra


def _restart_seed_lr(opts: GradientOptions, k: int) -> tuple[int, float]:
    """Restart ``k``'s seed and learning rate, a pure function of ``(opts.seed, k)``."""
    rng = np.random.default_rng([opts.seed, k])
    seed = int(rng.integers(0, 2**31 - 1))
    lo, hi = opts.lr_range
    lr = opts.lr if opts.lr is not None else float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    return seed, lr


def _restart(target, opts: GradientOptions, k: int, failed: set[bytes]) -> tuple[RestartRecord, list[Step]]:
    """One trial: relaxed Adam phase, the model's route (repair and twiddle fit), float64 polish."""
    import torch

    from ...torch_butterfly import ButterflyChain

    start = time.perf_counter()
    seed, lr = _restart_seed_lr(opts, k)
    real_out = not target.is_complex()
    model = ButterflyChain(
        target.shape[0], opts.model, complex=opts.field != "real", real_output=real_out and opts.field != "real",
        tied=opts.tied, share_logits=opts.share_logits, dtype=torch.float32, device=opts.device,
        generator=torch.Generator().manual_seed(seed),
    )
    report = _reporter(opts, k)
    relaxed = adam(model, target.to(torch.complex64 if target.is_complex() else torch.float32), lr, opts, report)
    found = _route(opts)(Restart(model, target, opts, seed, report, failed))
    report("polish", 0, found.loss)
    steps, loss = _polish(target, opts, found)
    rel = math.sqrt(max(loss, 0.0))
    record = RestartRecord(k + 1, seed, lr, relaxed.steps, relaxed.loss, found.flips, found.score, found.fit_tries,
                           found.orders, found.fitted or _fitted(steps), loss, rel, time.perf_counter() - start,
                           rel <= opts.target)
    report("done", relaxed.steps, loss)
    return record, steps


def _route(opts: GradientOptions) -> Callable[[Restart], RouteResult]:
    """The route of a restart: the closed-form repair for BP/BPP, outside-in for BPBP, else rounding."""
    if opts.model == "BPBP" and opts.search:
        return fit_bpbp
    if opts.model == "BPBP" or not opts.search:
        return round_and_search
    return fit_orders


def _polish(target, opts: GradientOptions, found: RouteResult) -> tuple[list[Step], float]:
    """The final float64 L-BFGS / Levenberg-Marquardt polish of a route's result.

    A restart whose exact-scoring orders all failed their short fits is not rescued by a long
    polish often enough to pay for it: a short L-BFGS only, the time goes to the next restart.
    (No exact order at all means an approximate target: that one gets the full polish.)
    A rank-2 fit has had its own finish (ALS, then LM while that is cheap): the generic polish
    would only crawl along the GL(2) gauge (measured at N = 256: 2000 L-BFGS iterations and CG
    Levenberg-Marquardt took minutes to move an ALS result from 4e-22 to 9e-23).
    """
    if _fitted(found.steps) == "rank2":
        return found.steps, found.loss
    hopeless = found.loss > FIT_OK and found.score <= EXACT
    return refine_steps(target, found.steps, _HOPELESS_ITERS if hopeless else opts.polish_iters, opts.goal / 100,
                        newton=not hopeless, newton_below=_NEWTON_BELOW, gn_iters=opts.gn_iters)


def _fitted(steps: list[Step]) -> str:
    """The twiddle model of a result, for the log: "rank2", "complex" or "real"."""
    kinds = {s.kind for s in steps}
    if "rank2" in kinds:
        return "rank2"
    return "complex" if any(s.kind == "butterfly" and np.iscomplexobj(s.data) for s in steps) else "real"


def _reporter(opts: GradientOptions, k: int) -> Reporter:
    """Bind the restart number into the progress callback (a no-op without one)."""

    def report(phase: str, step: int, loss: float) -> None:
        if opts.on_progress is not None:
            opts.on_progress({"restart": k + 1, "restarts": opts.restarts, "phase": phase, "step": step,
                              "steps": opts.steps, "loss": loss})

    return report
