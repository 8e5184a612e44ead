"""Plan-time specialization of butterfly stages: which stages can run as FFT stages.

A general butterfly stage mixes each pair ``(x0, x1)`` through a full 2x2 block
``[[a, b], [c, d]]``: four complex multiplies per pair and four complex twiddles to stream. The
stages of DFT and Hadamard factors (and of any butterfly whose blocks are rank-one scalings of
the 2x2 Hadamard matrix ``H = [[1, 1], [1, -1]]``) need far less, once diagonal scalings are
moved between adjacent stages. The algebra, for one pair whose input carries the scalings
``(k0, k1)`` left over by the stages before it (``carry``; all ones at the first stage)::

    [[a, b], [c, d]] diag(k0, k1) = [[A, B], [C, D]]        A = a k0, B = b k1, C = c k0, D = d k1
                                  = diag(A, C) [[1, w], [1, -w]]     with w = B / A,
                                                                     exactly when D = -C B / A

So the stage runs as ``y0 = x0 + w x1, y1 = x0 - w x1`` (one complex multiply per pair, an FFT's
count, one twiddle to stream) and leaves the output scalings ``(A, C)`` as the carry of the next
stage. ``D = -C B / A`` is ``a d + b c = 0``: the carries cancel out of the test, so it is a
property of the block alone, and it is checked to a few units of the working precision (the
plan must never change the product by more than rounding). A stage where any pair fails it (or
has a zero or non-finite entry) stays general, with the incoming carry folded into its blocks
(``[[a k0, b k1], [c k0, d k1]]``), and the carry starts afresh at ones after it.

After the last stage the carry is left over. It is dropped when it is all ones, folded into the
last stage when it is one real number per pair (``y0 = l x0 + (l w) x1, y1 = l x0 - (l w) x1``,
the same arithmetic with fused multiply-adds: the normalized DFT and Hadamard end like this),
and otherwise returned as a diagonal the kernel applies after the step. Within an FFT stage,
``w`` all one (Hadamard, the DFT's first stage) needs no multiply at all (``addsub``), and ``w``
all real (a real twiddle in a complex plan) halves the multiply.

Numbers are computed in complex128/float64 from the factors already cast to the working
precision; the kernel then rounds ``w`` and the scalings to it.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .layout import pair_positions

SLACK = 32  # the test's tolerance, in units of the working precision


@dataclasses.dataclass(frozen=True)
class StagePlan:
    """How one stage of a butterfly runs.

    ``kind``: ``"general"`` (``blocks``, the stage's 2x2 blocks with the carry folded in),
    ``"fft"`` (complex ``w`` per pair), ``"fft-real"`` (real ``w``) or ``"addsub"`` (``w`` = 1,
    ``w`` is None). ``dif``: the FFT stage is ``[[1, 1], [w, -w]]`` (else ``[[1, w], [1, -w]]``).
    ``scale``: None, or one real number ``l`` per pair (only on the stage where the carry ends):
    ``[[l, w], [l, -w]]``, or ``[[l, l], [w, -w]]`` when ``dif`` (``w`` already includes ``l``)."""

    kind: str
    blocks: np.ndarray | None = None
    w: np.ndarray | None = None
    scale: np.ndarray | None = None
    dif: bool = False

    @property
    def name(self) -> str:
        """The label ``Plan.stage_kinds`` shows: the kind, with ``+scale`` when scaled."""
        return self.kind + ("+scale" if self.scale is not None else "")


@dataclasses.dataclass(frozen=True)
class StepPlan:
    """A butterfly step as the kernel runs it: ``after @ stages[-1] ... stages[0] @ before``,
    ``before`` and ``after`` diagonals (natural order) or None."""

    stages: list[StagePlan]
    before: np.ndarray | None = None
    after: np.ndarray | None = None

    def cost(self) -> tuple[int, int]:
        """General stages first, then leftover diagonals: what makes a plan slower."""
        return (sum(st.kind == "general" for st in self.stages),
                (self.before is not None) + (self.after is not None))


def general(twiddle: np.ndarray) -> StepPlan:
    """Every stage general, as the factors store it (the plan before specialization)."""
    return StepPlan([StagePlan("general", blocks=b) for b in twiddle])


def specialize(twiddle: np.ndarray, eps: float) -> StepPlan:
    """The cheaper of the two ways to run the butterfly ``twiddle`` (levels, N/2, 2, 2) with FFT
    stages: carries pushed forward (``[[1, w], [1, -w]]`` stages, a leftover after the step: a
    DIT FFT leaves none) or backward (``[[1, 1], [w, -w]]``, a leftover before it: the butterflies
    ``bfly learn dft`` writes leave a constant). ``eps``: the working precision's epsilon."""
    forward = _walk(twiddle, SLACK * eps, dif=False)
    backward = _walk(twiddle, SLACK * eps, dif=True)
    return backward if backward.cost() < forward.cost() else forward


def _walk(twiddle: np.ndarray, tol: float, dif: bool) -> StepPlan:
    """Push the carries through the stages, forward (stride 1 first) or backward.

    Backward is forward on the transposed butterfly: ``diag(k) [[a, b], [c, d]]`` is the transpose
    of ``[[a, c], [b, d]] diag(k)``, and ``[[1, w], [1, -w]]`` transposes to ``[[1, 1], [w, -w]]``,
    so the same per-stage algebra serves both, on transposed blocks."""
    levels, half = twiddle.shape[:2]
    n = 2 * half
    carry = np.ones(n, dtype=np.result_type(twiddle.dtype, np.float64))
    stages: list[StagePlan] = [StagePlan("general")] * levels
    order = range(levels - 1, -1, -1) if dif else range(levels)
    for lev in order:
        pos0 = pair_positions(n, lev)
        pos1 = pos0 + (1 << lev)
        blocks = twiddle[lev].transpose(0, 2, 1) if dif else twiddle[lev]
        stage, carry[pos0], carry[pos1] = _stage(blocks, carry[pos0], carry[pos1], tol)
        if stage.kind == "general" and dif:
            stage = dataclasses.replace(stage, blocks=stage.blocks.transpose(0, 2, 1))
        stages[lev] = dataclasses.replace(stage, dif=dif and stage.kind != "general")
    end = 0 if dif else levels - 1
    leftover = carry
    if levels and stages[end].kind != "general":
        stages[end], leftover = _fold_end(stages[end], carry, pair_positions(n, end), 1 << end, tol)
    if leftover is None or np.all(np.abs(leftover - 1) <= tol):
        return StepPlan(stages)
    return StepPlan(stages, before=leftover) if dif else StepPlan(stages, after=leftover)


def _stage(blocks: np.ndarray, k0: np.ndarray, k1: np.ndarray, tol: float) -> tuple[StagePlan, np.ndarray, np.ndarray]:
    """One stage given its input carries: the plan and its output carries."""
    a, b = blocks[:, 0, 0] * k0, blocks[:, 0, 1] * k1
    c, d = blocks[:, 1, 0] * k0, blocks[:, 1, 1] * k1
    size = np.maximum(np.maximum(np.abs(a), np.abs(b)), np.maximum(np.abs(c), np.abs(d)))
    with np.errstate(all="ignore"):
        w = b / a
        ok = (np.isfinite(size) & (np.abs(a) > 0) & (np.abs(c) > 0)
              & (np.abs(d + c * w) <= tol * size))
    if not np.all(ok):
        folded = np.stack([np.stack([a, b], -1), np.stack([c, d], -1)], -2)
        one = np.ones_like(k0)
        return StagePlan("general", blocks=folded), one, one
    return _fft_stage(w, tol), a, c


def _fft_stage(w: np.ndarray, tol: float) -> StagePlan:
    """An FFT stage, as cheap as its twiddles allow (all one, all real, complex)."""
    if np.all(np.abs(w - 1) <= tol):
        return StagePlan("addsub")
    if w.dtype.kind != "c" or np.all(np.abs(w.imag) <= tol * np.abs(w)):
        return StagePlan("fft-real", w=np.ascontiguousarray(w.real))
    return StagePlan("fft", w=w)


def _fold_end(stage: StagePlan, carry: np.ndarray, pos0: np.ndarray, s: int,
              tol: float) -> tuple[StagePlan, np.ndarray | None]:
    """Fold the leftover carry into the stage where it ends when it is one real number ``l`` per
    pair: ``diag(l, l) [[1, w], [1, -w]] = [[l, l w], [l, -l w]]`` (and its transpose for a
    backward walk). Otherwise keep it for a diagonal op."""
    l0, l1 = carry[pos0], carry[pos0 + s]
    real = np.all(np.abs(np.imag(l0)) <= tol * np.abs(l0))
    if not (real and np.all(np.abs(l1 - l0) <= tol * np.abs(l0))) or np.all(np.abs(carry - 1) <= tol):
        return stage, carry
    lam = np.ascontiguousarray(np.real(l0))
    w = np.ones_like(lam) if stage.w is None else stage.w
    kind = "fft" if np.iscomplexobj(w) else "fft-real"
    return StagePlan(kind, w=lam * w, scale=lam, dif=stage.dif), None
