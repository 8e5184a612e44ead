"""The ``gradient`` solver: the seed paper's differentiable learner, made reliable.

One *restart* is the paper's trial: a random :class:`~bfly_cli.torch_butterfly.ButterflyChain`
(``BP``, ``BPP`` or ``BPBP``; complex twiddles, read out through ``Re`` for a real target, as the
paper compared real parts) trained with Adam on the relative squared error of the whole matrix,
its relaxed permutations then rounded to hard ones. What follows is beyond the paper:

1. **Closed-form repair.** Rounding is where trials are lost: one wrong choice among the
   3 (L-1) per permutation ruins the fit. For ``BP`` and ``BPP`` the rounded choices are repaired
   by :mod:`.choice_repair`, which scores a hard order exactly by the block-rank tail energy
   of the hierarchical splits (rank 1 for a butterfly, rank 2 for ``Re`` of a complex one) and
   searches level by level, keeping the levels the relaxation got right. ``BPBP`` has no such
   score: it is fitted from the outside in (:mod:`.bpbp_split`, assuming a bit-reversal middle
   permutation), else its single-choice flips are scored by a short float64 L-BFGS fit.
2. **Twiddle fit and float64 polish.** With the permutations fixed, the relaxed twiddles and a
   few fresh random sets get a short float64 L-BFGS each; the best goes on to L-BFGS and
   Levenberg-Marquardt in float64, to the target (default 1e-10), keeping the best iterate.
   A real target whose order needs rank 2 is fitted by the real rank-2 model instead (random
   stages, L-BFGS, then alternating least squares, :mod:`.rank2_als`), saved as ``[permutation,
   rank2]``: ``Re`` of a complex butterfly has local minima there that no optimizer tried escaped.

Restarts draw their seed and learning rate (log-uniform) from ``seed`` and stop as soon as one
reaches the target. Everything is deterministic for a given ``seed`` on the CPU. The solver sees
only the matrix. Progress goes through an optional callback (the CLI draws a rich bar from it), so
this module neither prints nor imports rich.

:func:`polish` (twiddles trainable, permutations fixed, never worse than its input) is also the
public polish step for other solvers' approximate results.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Sequence

import numpy as np

from ...errors import BflyError
from ...factors import Step, log2_exact
from .refine import _GN_STRUCTURED, _norm2, _polish_steps, check_device, relative_sq_error

ProgressFn = Callable[[dict[str, Any]], None]

DEFAULT_LR_RANGE = (3e-3, 3e-1)
FIELDS = ("auto", "complex", "real")
REAL_MODELS = ("auto", "complex", "rank2")


@dataclass(frozen=True)
class GradientOptions:
    """Every knob of the learner; ``solve_gradient(matrix, **options)`` builds one."""

    model: str = "BP"  # BP, BPP or BPBP (product notation)
    restarts: int = 8  # at most this many trials; stop at the first success
    steps: int = 300  # Adam steps per restart (the relaxed phase; early stops, see _adam)
    lr: float | None = None  # fixed learning rate; None draws one per restart from lr_range
    lr_range: tuple[float, float] = DEFAULT_LR_RANGE
    device: str = "cpu"
    seed: int = 0
    target: float = 1e-10  # success: relative Frobenius error at or below this
    field: str = "auto"  # auto: complex twiddles (+ Re for real targets); real: real twiddles
    tied: bool = False  # paper's tied twiddles during the relaxed phase
    share_logits: bool = False  # one set of 3 permutation logits for all levels
    search: bool = True  # repair the rounded permutations (closed-form score; L-BFGS score for BPBP)
    search_rounds: int = 3  # BPBP: single-flip rounds
    search_iters: int = 40  # BPBP: L-BFGS iterations to score one candidate permutation
    beam: int = 4  # closed-form search: chunk partitions kept per level
    fit_tries: int = 2  # fresh random twiddle sets tried (beside the relaxed ones) per fixed order
    orders: int = 3  # exact-scoring orders tried per restart (one whose fit fails is excluded after)
    fit_iters: int = 150  # float64 L-BFGS iterations of each of those trial fits
    real_model: str = "auto"  # real targets whose orders need rank 2: complex (Re), rank2, or auto (see _real_route)
    rank2_from: int = 32  # auto: from this N on, rank-2 orders go straight to the real rank-2 model
    rank2_tries: int = 2  # random starts of the real rank-2 model per order
    polish_iters: int = 2000  # L-BFGS iterations of the final float64 polish
    gn_iters: int = 100  # Levenberg-Marquardt steps of the final polish (stops early on a stall)
    adam_goal: float = 1e-7  # stop Adam once the relaxed relative squared error is below this
    time_limit: float | None = None  # seconds: start no new restart after this much wall time
    on_progress: ProgressFn | None = None


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
    fitted: str  # the model of the result: "complex" (Re of it for a real target), "real" or "rank2"
    final_loss: float
    rel_error: float
    seconds: float
    success: bool


def solve_gradient(matrix: np.ndarray, **options: Any) -> tuple[list[Step], dict[str, Any]]:
    """Learn factors of ``matrix``; returns ``(steps, extra_meta)`` for :func:`bfly_cli.learn`."""
    import torch

    opts = _check_options(GradientOptions(**options), matrix)
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
    steps = _cast_like(best[1], np.asarray(matrix).dtype)
    extra = {
        "model": opts.model,
        "restarts_used": len(log),
        "solver_seed": opts.seed,
        "solver_device": opts.device,
        "solver_log": [asdict(r) for r in log],
    }
    return steps, extra


def _check_options(opts: GradientOptions, matrix: np.ndarray) -> GradientOptions:
    """Validate user-facing options with one-line messages naming the bad value."""
    from ...torch_butterfly import MODELS

    if opts.model not in MODELS:
        raise BflyError(f"unknown model {opts.model!r}; choose one of: {', '.join(MODELS)}")
    if opts.field not in FIELDS:
        raise BflyError(f"unknown field {opts.field!r}; choose one of: {', '.join(FIELDS)}")
    if opts.real_model not in REAL_MODELS:
        raise BflyError(f"unknown real_model {opts.real_model!r}; choose one of: {', '.join(REAL_MODELS)}")
    if opts.field == "real" and np.iscomplexobj(matrix):
        raise BflyError("field 'real' cannot fit a complex matrix; use field 'auto'")
    if opts.restarts < 1 or opts.steps < 0:
        raise BflyError(f"--restarts must be >= 1 and --steps >= 0 (got {opts.restarts}, {opts.steps})")
    if opts.lr is not None and not opts.lr > 0:
        raise BflyError(f"--lr must be positive (got {opts.lr})")
    check_device(opts.device)
    return opts


def _restart_seed_lr(opts: GradientOptions, k: int) -> tuple[int, float]:
    """Restart ``k``'s seed and learning rate, a pure function of ``(opts.seed, k)``."""
    rng = np.random.default_rng([opts.seed, k])
    seed = int(rng.integers(0, 2**31 - 1))
    lo, hi = opts.lr_range
    lr = opts.lr if opts.lr is not None else float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    return seed, lr


def _restart(target, opts: GradientOptions, k: int, failed: set[bytes]) -> tuple[RestartRecord, list[Step]]:
    """One trial: relaxed Adam phase, rounding and repair, twiddle fit, float64 polish."""
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
    relaxed, done = _adam(model, target.to(torch.complex64 if target.is_complex() else torch.float32), lr,
                          opts, report)
    goal = opts.target**2
    fitted = None
    if opts.model == "BPBP" and opts.search:
        steps, loss, flips, orders = _mirror_or_search(model, target, opts, seed, goal, report)
        score, tries, fitted = math.nan, 0, ("mirror" if flips < 0 else None)
        flips = max(flips, 0)
    elif opts.model == "BPBP" or not opts.search:
        steps, loss, flips = _round_and_search(model, target, opts, goal, report)
        score, tries, orders = math.nan, 0, 0
    else:
        steps, loss, flips, score, tries, orders = _orders_and_fits(model, target, opts, seed, goal, failed, report)
    report("polish", 0, loss)
    # A restart whose exact-scoring orders all failed their short fits is not rescued by a long
    # polish often enough to pay for it: a short L-BFGS only, the time goes to the next restart.
    # (No exact order at all means an approximate target: that one gets the full polish.)
    # A rank-2 fit has had its own finish (ALS, then LM while that is cheap): the generic polish
    # would only crawl along the GL(2) gauge (measured at N = 256: 2000 L-BFGS iterations and CG
    # Levenberg-Marquardt took minutes to move an ALS result from 4e-22 to 9e-23).
    hopeless = loss > _FIT_OK and score <= _exact_score()
    if _fitted(steps) != "rank2":
        steps, loss = _polish_steps(target, steps, _HOPELESS_ITERS if hopeless else opts.polish_iters, goal / 100,
                                    newton=not hopeless, newton_below=_NEWTON_BELOW, gn_iters=opts.gn_iters)
    rel = math.sqrt(max(loss, 0.0))
    record = RestartRecord(k + 1, seed, lr, done, relaxed, flips, score, tries, orders, fitted or _fitted(steps), loss, rel,
                           time.perf_counter() - start, rel <= opts.target)
    report("done", done, loss)
    return record, steps


def _orders_and_fits(model, target, opts: GradientOptions, seed: int, goal: float, failed: set[bytes],
                     report) -> tuple[list[Step], float, int, float, int, int]:
    """Repair the rounding, fit twiddles; if the fit fails, exclude that order and repair again.

    A zero block-rank score is necessary, not sufficient, for ``Re`` of a complex butterfly: at
    N = 8 about half of DCT's exact rank-2 orders are not reachable and their fits stall at a
    relative error ~0.2, while right orders fit in a few tries. So an order whose short fits
    stay above ``_FIT_OK`` goes into ``failed`` (shared by all restarts) and the next exact order
    is tried, up to ``opts.orders`` per restart. A rank-2 order may instead (``_real_route``) go
    to the real rank-2 model, which fits *every* exact rank-2 order. Returns the best
    (steps, loss) with the last repair's flips and score and the totals of fits and orders tried.
    """
    from .choice_repair import EXACT, order_key

    best: tuple[list[Step], float] | None = None
    tries = orders = flips = 0
    score = math.nan
    for _ in range(opts.orders):
        choices, score, flips, rank = _repair(model, target, opts, frozenset(failed))
        report("search", flips, score)
        route = _real_route(opts, target.shape[0], rank, score)
        steps, loss, used = [], math.inf, 0
        if route in ("complex", "both"):
            steps, loss, used = _fit_twiddles(model, choices, target, opts, (seed, rank == 1), goal, report)
        if route in ("rank2", "both") and loss > _FIT_OK:
            steps, loss, more = _fit_rank2(target, _merged(model, choices), seed, goal, opts, report)
            used += more
        tries, orders = tries + used, orders + 1
        if best is None or loss < best[1]:
            best = (steps, loss)
        if loss <= _FIT_OK or score > EXACT:
            break
        failed.add(order_key(_merged(model, choices)))
    return best[0], best[1], flips, score, tries, orders


def _real_route(opts: GradientOptions, n: int, rank: int, score: float) -> str:
    """Which twiddle model fits a repaired order: "complex", "rank2" or "both" (complex first).

    Rank-1 orders and inexact ones always take the chain's own (complex) model. For an exact
    rank-2 order of a real target, ``Re`` of a complex butterfly from random twiddles stalls in
    local minima more and more often as N grows (measured with a known-right order, 0 of 4
    random starts reached 1e-3 at N = 32, L-BFGS or dense Levenberg-Marquardt alike), while the
    real rank-2 model (each twiddle a real 2x2 of 2x2 blocks, a superset of ``Re`` of complex
    twiddles) reached 1e-13 from 5 of 5 random starts at N = 32 and 64.
    """
    from .choice_repair import EXACT

    if rank != 2 or score > EXACT or opts.real_model == "complex":
        return "complex"
    if opts.real_model == "rank2" or n >= opts.rank2_from:
        return "rank2"
    return "both"


def _fit_rank2(target, perm: np.ndarray, seed: int, goal: float, opts: GradientOptions,
               report) -> tuple[list[Step], float, int]:
    """Fit a real rank-2 butterfly (``rank2`` step) to ``target[:, perm]`` from random stages.

    Every block rank-2 order is exactly such a product (the hierarchical factorization with
    rank-2 blocks), and its least squares from random stages showed no local minima: L-BFGS
    reaches ~1e-7 in 200 iterations, then alternating least squares (each level solved exactly
    with the others fixed, :mod:`.rank2_als`) reaches 1e-22 in a few sweeps, where L-BFGS
    crawls along the GL(2) gauge and LM on all 8 N log2 N unknowns at once is too slow beyond
    N = 64. LM remains the fallback. Returns the best (steps, loss) and the random starts used.
    """
    import torch

    from . import rank2_als as rank2_lsq

    n = target.shape[0]
    rng = np.random.default_rng([seed, 7919])

    def fit(attempt: int) -> tuple[list[Step], float]:
        stages = rng.standard_normal((log2_exact(n), n // 2, 2, 2, 2, 2)) * 0.5
        steps = [Step("permutation", np.asarray(perm)), Step("rank2", stages)]
        steps, loss = _polish_steps(target, steps, _RANK2_LBFGS, goal / 100)
        report("rank2", attempt, loss)
        if loss <= _RANK2_ALS_BELOW:
            stages, loss = rank2_lsq.alternate(perm, torch.as_tensor(steps[1].data, device=target.device),
                                               target, goal / 100)
            steps = [steps[0], Step("rank2", stages.cpu().numpy())]
            report("rank2", attempt, loss)
        if loss > goal and 8 * n * log2_exact(n) <= _GN_STRUCTURED:  # the rank2 step's real entries
            # Levenberg-Marquardt from where that ended, while its system is solved directly
            # (N <= 64); beyond, its CG steps cost minutes and a fresh start is the better bet.
            steps, loss = _polish_steps(target, steps, 0, goal / 100, newton=True, gn_iters=_RANK2_LM)
            report("rank2", attempt, loss)
        return steps, loss

    return _best_of_starts(opts.rank2_tries, fit, goal)


def _best_of_starts(count: int, fit: Callable[[int], tuple[list[Step], float]],
                    good: float) -> tuple[list[Step], float, int]:
    """``fit(attempt)`` for attempt 0, 1, ... < ``count``, stopping once the best loss is <= ``good``.

    Returns the best (steps, loss) and the number of starts used.
    """
    best: tuple[list[Step], float] | None = None
    for attempt in range(count):
        steps, loss = fit(attempt)
        if best is None or loss < best[1]:
            best = (steps, loss)
        if best[1] <= good:
            return best[0], best[1], attempt + 1
    return best[0], best[1], count


def _fitted(steps: list[Step]) -> str:
    """The twiddle model of a result, for the log: "rank2", "complex" or "real"."""
    kinds = {s.kind for s in steps}
    if "rank2" in kinds:
        return "rank2"
    return "complex" if any(s.kind == "butterfly" and np.iscomplexobj(s.data) for s in steps) else "real"


_RANK2_LBFGS = 200
_RANK2_ALS_BELOW = 1e-2  # alternating least squares from this loss on (L-BFGS has balanced the stages)
_RANK2_LM = 60


def _exact_score() -> float:
    from .choice_repair import EXACT

    return EXACT


def _merged(model, choices: list[np.ndarray]) -> np.ndarray:
    """The one column order (``x <- x[perm]``) of the chain's hard permutations, in application order."""
    perms = [p.hard_permutation(c) for p, c in zip(model.permutations(), choices)]
    merged = perms[0]
    for perm in perms[1:]:
        merged = merged[perm]
    return merged


def _score_ranks(model, target) -> tuple[int, ...]:
    """Block ranks to try, lowest first: 1 (a butterfly), then 2 for ``Re`` of a complex one.

    A real target with an exact rank-1 order is a real butterfly (Hadamard): its twiddles are
    then started real, which the ``Re`` fit finds far more easily than a generic complex start.
    """
    return (1, 2) if model.real_output and not target.is_complex() else (1,)


def _repair(model, target, opts: GradientOptions,
            exclude: frozenset[bytes] = frozenset()) -> tuple[list[np.ndarray], float, int, int]:
    """Repair the rounded permutations with the closed-form score (:mod:`.choice_repair`).

    Returns the choices, their score, how many 0/1 choices changed, and the block rank used.
    Orders in ``exclude`` (keys of :func:`~.permutation_search.order_key`) count as not exact.
    """
    from .choice_repair import EXACT, search_pair, search_single

    matrix = target.detach().cpu().numpy().T
    rounded = model.hard_choices()
    found, rank = None, 1
    for rank in _score_ranks(model, target):
        if len(rounded) == 1:
            found = search_single(matrix, rounded[0], rank, opts.beam, exclude)
        else:
            found = search_pair(matrix, rounded[0], rounded[1], rank, opts.beam, exclude=exclude)
        if found.score <= EXACT:
            break
    flips = int(sum(np.sum(a != b) for a, b in zip(found.choices, rounded)))
    return found.choices, found.score, flips, rank


def _fit_twiddles(model, choices, target, opts: GradientOptions, draw: tuple[int, bool], goal: float,
                  report) -> tuple[list[Step], float, int]:
    """Fit the twiddles for fixed permutations: the relaxed ones, then fresh random sets.

    With a ``Re`` readout a random start often stalls in a local minimum even for the right
    order, so a few starts get a short float64 L-BFGS each and the best one goes on to the
    polish; the loop stops as soon as one is clearly right. ``draw`` is ``(seed, real)``: the
    random sets come from ``(seed, try)`` (deterministic) and are real when ``real``.
    """
    seed, real = draw
    template = model.to_steps(choices)

    def fit(attempt: int) -> tuple[list[Step], float]:
        start = template if attempt == 0 else _random_twiddles(template, seed, attempt, real)
        steps, loss = _polish_steps(target, start, opts.fit_iters, goal / 100)
        report("fit", attempt, loss)
        return steps, loss

    return _best_of_starts(opts.fit_tries + 1, fit, _CLEARLY_RIGHT)


def _random_twiddles(steps: list[Step], seed: int, attempt: int, real: bool = False) -> list[Step]:
    """``steps`` with every butterfly redrawn at random (``E|t|^2 = 1/2``, as the modules' init).

    ``real``: complex butterflies get a zero imaginary part (still complex, so it can move).
    """
    rng = np.random.default_rng([seed, attempt])
    out = []
    for step in steps:
        if step.kind == "butterfly":
            shape = step.data.shape
            if np.iscomplexobj(step.data) and real:
                data = rng.standard_normal(shape) * math.sqrt(0.5) + 0j
            elif np.iscomplexobj(step.data):
                data = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) * 0.5
            else:
                data = rng.standard_normal(shape) * math.sqrt(0.5)
            out.append(Step("butterfly", data))
        else:
            out.append(step)
    return out


def _reporter(opts: GradientOptions, k: int) -> Callable[[str, int, float], None]:
    """Bind the restart number into the progress callback (a no-op without one)."""

    def report(phase: str, step: int, loss: float) -> None:
        if opts.on_progress is not None:
            opts.on_progress({"restart": k + 1, "restarts": opts.restarts, "phase": phase, "step": step,
                              "steps": opts.steps, "loss": loss})

    return report


def _adam(model, target, lr: float, opts: GradientOptions, report) -> tuple[float, int]:
    """The paper's relaxed phase; returns (last relaxed loss, steps taken).

    The relaxed loss only creeps down (like 1/t) once the twiddles fit, because an exact fit needs
    the permutation logits at infinity. Rounding is all we need from this phase, so it stops when
    the rounded choices have been stable for ``_PATIENCE`` steps at a loss below ``_SETTLED``,
    at ``adam_goal``, on a plateau, or after ``opts.steps``.
    """
    import torch

    opt = torch.optim.Adam(model.parameters(), lr=lr)
    norm2 = _norm2(target)
    best, since, value, step = math.inf, 0, math.inf, 0
    choices, stable = None, 0
    for step in range(1, opts.steps + 1):
        opt.zero_grad(set_to_none=True)
        loss = relative_sq_error(model.matrix_t(), target, norm2)
        loss.backward()
        opt.step()
        if step % _CHECK_EVERY and step != opts.steps:
            continue
        value = float(loss.detach())
        report("adam", step, value)
        now = model.hard_choices()
        same = choices is not None and all(np.array_equal(a, b) for a, b in zip(now, choices))
        choices, stable = now, (stable + _CHECK_EVERY if same else 0)
        best, since = (value, 0) if value < 0.99 * best else (best, since + _CHECK_EVERY)
        if (not math.isfinite(value) or value < opts.adam_goal or since >= _PLATEAU
                or (stable >= _PATIENCE and value < _SETTLED)):
            break
    return value, step


_CLEARLY_RIGHT = 1e-10  # a short fit this good (relative squared error) is finished by the polish
_HOPELESS_ITERS = 100
_FIT_OK = 1e-4  # a short fit at or below this (relative squared error, i.e. 1e-2 relative) counts as the right order
_NEWTON_BELOW = 0.1  # Levenberg-Marquardt runs from this close (relative squared error); it often
# gets a stalled Re-readout fit out of L-BFGS's plateau, but costs much more per step
_CHECK_EVERY = 25
_PATIENCE = 300
_SETTLED = 1e-2
_PLATEAU = 500


def _mirror_or_search(model, target, opts: GradientOptions, seed: int, goal: float,
                      report) -> tuple[list[Step], float, int, int]:
    """``BPBP``: the outside-in fit (:mod:`.bpbp_split`) first, else the single-flip search.

    The outside-in fit assumes the middle permutation is the bit reversal R and tries two first
    orders: the relaxation's rounded one and the matrix's own (first permutation R). Returns
    (steps, loss, flips, orders tried); flips is -1 when the outside-in fit succeeded.
    """
    from ...factors import bit_reversal
    from . import bpbp_split as mirror_split

    n = target.shape[0]
    rev = bit_reversal(n)
    rounded = model.to_steps(model.hard_choices())[0].data
    tried = 0
    for order in _unique_orders([np.asarray(rounded)[rev], np.arange(n)]):
        tried += 1
        fitted = mirror_split.fit_mirror(target.T, order, seed)
        if fitted is None:
            continue
        steps = fitted[0] + ([] if target.is_complex() else [Step("real", None)])
        steps, loss = _polish_steps(target, steps, 0, goal / 100)  # measures it, float64
        report("search", 0, loss)
        if loss <= goal:
            return steps, loss, -1, tried
    steps, loss, flips = _round_and_search(model, target, opts, goal, report)
    return steps, loss, flips, tried


def _unique_orders(orders: list[np.ndarray]) -> list[np.ndarray]:
    out: list[np.ndarray] = []
    for order in orders:
        if not any(np.array_equal(order, o) for o in out):
            out.append(order)
    return out


def _round_and_search(model, target, opts: GradientOptions, goal: float, report) -> tuple[list[Step], float, int]:
    """Round the permutations, then hill-climb single-choice flips (scored by a short L-BFGS).

    The ``BPBP`` route (and ``search=False``): two butterflies have no closed-form order score.
    """
    choices = model.hard_choices()
    steps, loss = _polish_steps(target, model.to_steps(choices), opts.search_iters, goal / 100)
    report("search", 0, loss)
    flips = 0
    if not opts.search:
        return steps, loss, flips
    for _ in range(opts.search_rounds):
        if loss <= max(goal, _CLEARLY_RIGHT):
            break
        cand = _best_flip(model, target, steps, choices, opts, goal)
        if cand is None or cand[1] >= 0.5 * loss:
            break
        steps, loss, choices = cand
        flips += 1
        report("search", flips, loss)
    return steps, loss, flips


def _best_flip(model, target, steps, choices, opts, goal) -> tuple[list[Step], float, list] | None:
    """The single-choice flip of the rounded permutations whose short fit is best."""
    best = None
    for cand in _single_flips(choices):
        trial = _with_permutations(steps, model.to_steps(cand))
        trial, loss = _polish_steps(target, trial, opts.search_iters, goal / 100)
        if best is None or loss < best[1]:
            best = (trial, loss, cand)
        if loss <= goal:
            break
    return best


def _single_flips(choices: Sequence[np.ndarray]) -> list[list[np.ndarray]]:
    """Every choice set that differs from ``choices`` in exactly one 0/1 choice."""
    out = []
    for which, arr in enumerate(choices):
        for idx in np.ndindex(arr.shape):
            new = [c.copy() for c in choices]
            new[which][idx] = not new[which][idx]
            out.append(new)
    return out


def _with_permutations(steps: list[Step], perm_source: list[Step]) -> list[Step]:
    """``steps`` with its permutation data replaced by those of ``perm_source`` (same kinds)."""
    return [Step("permutation", src.data) if own.kind == "permutation" else own
            for own, src in zip(steps, perm_source)]


def _cast_like(steps: list[Step], dtype: np.dtype) -> list[Step]:
    """Store the result in the caller's working precision (complex64/float32 for --dtype float32)."""
    if np.dtype(dtype) not in (np.dtype(np.float32), np.dtype(np.complex64)):
        return steps
    out = []
    for s in steps:
        if s.kind in ("butterfly", "diagonal"):
            out.append(Step(s.kind, s.data.astype(np.complex64 if np.iscomplexobj(s.data) else np.float32)))
        else:
            out.append(s)
    return out
