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
property of the block alone, and it is checked to ``SLACK`` = 32 units of the working precision
(``SLACK_DOUBLE`` = 64 in double: see there), so the plan never changes the product by more than
rounding. A stage where any pair fails it (or
has a zero or non-finite entry) stays general, with the incoming carry folded into its blocks
(``[[a k0, b k1], [c k0, d k1]]``), and the carry starts afresh at ones after it.

The same walk run backwards (stride N/2 first) on transposed blocks gives stages
``[[1, 1], [w, -w]]`` (``y0 = x0 + x1, y1 = w (x0 - x1)``) with the carry moving towards the
input: ``diag(k) [[a, b], [c, d]]`` is the transpose of ``[[a, c], [b, d]] diag(k)``. Either way a
carry is left over where the walk ends. It is dropped when it is all ones, folded into that end
stage when it is one real number per pair (``y0 = l x0 + (l w) x1, y1 = l x0 - (l w) x1``, or
``y0 = l (x0 + x1)`` backwards: the same arithmetic with fused multiply-adds), and otherwise kept
as a diagonal the kernel applies after (or before) the step. :func:`specialize` takes the
direction with fewer general stages, then fewer leftover diagonals: a DIT FFT leaves nothing
forwards, the butterflies ``bfly learn dft`` writes leave a constant backwards. Within an FFT
stage, ``w`` all one (Hadamard, the DFT's first stage) needs no multiply at all (``addsub``), and
``w`` all real (a real twiddle in a complex plan) halves the multiply.

The second half of the module lays a butterfly step out as the kernel's ops: FFT stages as FFT
ops, two consecutive ones with the same form as one radix-4 pass (each element loaded and stored
once per two stages), the small strides on the transposed view (see ``_kernel.c``).

Numbers are computed in complex128/float64 from the factors already cast to the working
precision; the kernel then rounds ``w`` and the scalings to it.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .layout import pair_index, pair_positions

# op kinds and flags of the compiled kernel (the same numbers as in _kernel.c)
_OP_GATHER, _OP_BF, _OP_BFT, _OP_DIAG, _OP_REAL, _OP_R2, _OP_R2T = 0, 1, 2, 3, 4, 5, 6
_OP_FFT, _OP_FFTT, _OP_FFT2, _OP_FFT2T, _OP_UNVIEW, _OP_FFT3T, _OP_FFT3, _OP_LOAD8 = 7, 8, 9, 10, 11, 12, 13, 14
_FLAG_FIRST, _FLAG_LAST, _FLAG_MIXED, _FLAG_UNIT, _FLAG_STATE = 1, 2, 4, 8, 1  # rank2 stage flags; gather/unview flag (see _kernel.c)
_FFT_REALW, _FFT_UNIT, _FFT_SCALED, _FFT_DIF = 1, 2, 4, 8  # FFT stage flags: w real, w = 1, scale plane, [[1,1],[w,-w]]
_ROWS = 8  # transposed-view height: strides 1, 2, 4 mix rows of length N/8
SLACK = 32  # the test's tolerance, in units of the working precision (single)
# Double-precision factors come from solvers whose own rounding puts their blocks up to ~60 units
# of float64 off the FFT form (measured: 25-54 on a DFT-256 learned from scipy.linalg.dft, up to
# 64 on the DFT-16384 `bfly learn` writes), which 32 left general: 4-12x slower than FFTW in
# complex128. Snapping them changed the product by rounding only (1.5e-15 against 1.3e-15 for the
# unsnapped plan, DFT-16384 against its numpy reference), 64 units of float64 being 1.4e-14.
SLACK_DOUBLE = 64


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
    tol = (SLACK_DOUBLE if eps < 1e-10 else SLACK) * eps
    forward = _walk(twiddle, tol, dif=False)
    if forward.cost() == (0, 0):  # nothing left to gain
        return forward
    backward = _walk(twiddle, tol, dif=True)
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
    leftover = carry
    for end in _fold_stages(levels, dif, _is_constant(carry, tol)):
        if stages[end].kind != "general":
            stages[end], leftover = _fold_end(stages[end], carry, pair_positions(n, end), 1 << end, tol)
            break
    if leftover is None or np.all(np.abs(leftover - 1) <= tol):
        return StepPlan(stages)
    return StepPlan(stages, before=leftover) if dif else StepPlan(stages, after=leftover)


def _fold_stages(levels: int, dif: bool, constant: bool) -> list[int]:
    """Where a leftover carry may be folded, in order of preference: the stage it ends at (the
    first for a backward walk, the last for a forward one), and for a forward walk whose carry is
    one constant (the 1/sqrt(N) of an orthonormal DFT), the first stage too, tried first. A
    constant commutes with every stage, and the first stage runs inside the first radix-8 pass,
    whose scale costs no extra pass, while a scaled last stage cannot join the radix-4 pass
    (which has no scale planes): a DFT-256's last two stages then run as one pass, not two."""
    if not levels:
        return []
    if dif:
        return [0]
    return [0, levels - 1] if constant else [levels - 1]


def _is_constant(carry: np.ndarray, tol: float) -> bool:
    """True when the carry is one real number everywhere, up to ``tol`` (relative)."""
    first = carry[0]
    return bool(abs(np.imag(first)) <= tol * abs(first) and np.all(np.abs(carry - first) <= tol * abs(first)))


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


# ---- the butterfly's ops for the kernel (layouts: see _kernel.c) ----


def _gather(idx: np.ndarray, flags: int = 0) -> tuple:
    """A gather op; ``flags`` = ``_FLAG_STATE`` also moves the rank2 slot-1 planes."""
    return (_OP_GATHER, 0, 0, 0, 0, np.ascontiguousarray(idx, dtype=np.int32), flags)


def _planes(values: np.ndarray, is_complex: bool, real_dt: np.dtype) -> np.ndarray:
    """Stack values along a new first axis as (re, im) planes when complex, else one plane."""
    if is_complex:
        return np.ascontiguousarray(np.stack([values.real, np.imag(values)]), dtype=real_dt)
    return np.ascontiguousarray(values, dtype=real_dt)


def _butterfly_ops(twiddle: np.ndarray, n: int, is_complex: bool, real_dt: np.dtype,
                   special: bool = True) -> list[tuple]:
    """The ops of one butterfly step; the stages with stride below ``rows`` run on the
    transposed view.

    With ``special`` (the default), stages whose blocks have the FFT form after moving diagonal
    scalings between stages run as FFT ops (:func:`specialize`), two consecutive ones with the
    same flags as one radix-4 pass, and a leftover diagonal becomes a DIAG op; ``special=False``
    keeps every stage general (for measuring what the specialization gains)."""
    rows = _rows(n)
    cols = n // rows
    step = specialize(twiddle, float(np.finfo(real_dt).eps)) if special else general(twiddle)
    ops: list[tuple] = []
    into_view = np.arange(n).reshape(cols, rows).T.ravel()
    if rows > 1:
        ops.append(_gather(into_view))  # into the (rows, cols) view
    if step.before is not None:  # a diagonal before the stages, indexed like the view
        ops.append((_OP_DIAG, 0, 0, 0, 0, _planes(step.before[into_view], is_complex, real_dt)))
    stages = [_stage_data(st, is_complex) for st in step.stages]
    lev = 0
    radix8 = _fft3t_op(stages, n, rows, cols, real_dt) if special else None
    if radix8 is not None:  # strides 1, 2, 4 and the way out of the view in one pass
        ops.append(radix8)
        lev = 3
    while lev < len(stages):
        s = 1 << lev
        if s == rows and radix8 is None:  # back to natural order: 8x8 transposes when they fit, else a gather
            unview = special and rows == 8 and cols % 8 == 0
            ops.append((_OP_UNVIEW, 0, rows, cols, 0, None, 0) if unview else
                       _gather(np.arange(n).reshape(rows, cols).T.ravel()))
        view = s < rows
        radix8_op = None if view or not special else _fft3_op(stages, lev, n, real_dt)
        if radix8_op is not None:  # three stages per load and store
            ops.append(radix8_op)
            lev += 3
            continue
        if special and lev + 2 == len(stages) and s >= rows:  # the last two: one radix-4 pass if a common form exists
            stages[lev:] = _common_forms(stages[lev:], n, scaled=False)
        if lev + 1 < len(stages) and _fusable(stages[lev], stages[lev + 1], s, rows, cols):
            data = _fused_planes(stages[lev][2], stages[lev + 1][2], lev, n, rows, real_dt)
            ops.append((_OP_FFT2T if view else _OP_FFT2, s, rows if view else 0, cols if view else 0, 8, data,
                        stages[lev][1]))
            lev += 2
            continue
        kind, flags, comps = stages[lev]
        width, data = _blocked(comps, s, rows, cols, real_dt)
        ops.append((kind + (1 if view else 0), s, rows if view else 0, cols if view else 0, width, data, flags))
        lev += 1
    if rows > 1 and len(stages) <= rows.bit_length() - 1 and radix8 is None:  # every stage ran transposed
        ops.append(_gather(np.arange(n).reshape(rows, cols).T.ravel()))  # leave the view
    if step.after is not None:
        ops.append((_OP_DIAG, 0, 0, 0, 0, _planes(step.after, is_complex, real_dt)))
    return ops


def _stage_data(stage: StagePlan, is_complex: bool) -> tuple[int, int, list[np.ndarray]]:
    """(natural-order op kind, flags, per-pair planes) of one stage: a general stage streams its
    a, b, c, d (re and im when complex); an FFT stage w (re and im, or one real plane, or none
    when w = 1), then the scale plane if any."""
    if stage.kind == "general":
        b = stage.blocks
        comps = [b[:, 0, 0], b[:, 0, 1], b[:, 1, 0], b[:, 1, 1]]
        return _OP_BF, 0, [p for c in comps for p in ((c.real, np.imag(c)) if is_complex else (np.real(c),))]
    flags = {"addsub": _FFT_UNIT, "fft-real": _FFT_REALW, "fft": 0}[stage.kind]
    if stage.dif and stage.kind != "addsub":  # w = 1: both forms are the same additions
        flags |= _FFT_DIF
    comps = [] if stage.w is None else [stage.w.real, stage.w.imag] if stage.kind == "fft" else [stage.w]
    if stage.scale is not None:
        flags |= _FFT_SCALED
        comps.append(stage.scale)
    return _OP_FFT, flags, comps


def _radix8_flags(stages: list[tuple]) -> int | None:
    """The flags of a radix-8 op over these three stages: FFT stages with the same flags apart
    from their scale planes (bit 4 + st: stage st is scaled), else None."""
    if len(stages) != 3 or any(st[0] != _OP_FFT for st in stages):
        return None
    base = {st[1] & ~_FFT_SCALED for st in stages}
    if len(base) != 1:
        return None
    return base.pop() | sum(16 << st for st in range(3) if stages[st][1] & _FFT_SCALED)


def _radix8_planes(stages: list[tuple], lev: int, first: np.ndarray, step: int, real_dt: np.dtype) -> np.ndarray | None:
    """Twiddles of a radix-8 op over stages ``lev .. lev + 2``: ``first`` (blocks, 8) holds the
    natural position of member 0 of each octet in visiting order, member ``m`` is at
    ``first + m * step`` (``step`` = 2**lev). Per block: for stage 0, 1, 2 in turn, for each pair
    of members ``(m, m + 2**st)`` with ``m`` without bit ``st``, the stage's planes (w re, w im / w,
    then the scale) of the block's 8 octets."""
    planes = [comp[pair_index(lev + st, first + m * step)] for st in range(3) for m in range(8) if not m & (1 << st)
              for comp in stages[st][2]]
    return np.ascontiguousarray(np.stack(planes, axis=1), dtype=real_dt) if planes else None


def _fft3t_op(stages: list[tuple], n: int, rows: int, cols: int, real_dt: np.dtype) -> tuple | None:
    """The radix-8 view op (strides 1, 2, 4, then out of the view; see ``_kernel.c``) when the
    first three stages allow it, else None. The members of an octet are the 8 rows of a column:
    natural positions ``8 col + m``."""
    group = _common_forms(stages[:3], n)
    flags = _radix8_flags(group) if rows == 8 and cols % 8 == 0 else None
    if flags is None:
        return None
    first = np.arange(cols).reshape(cols // 8, 8) * 8
    return (_OP_FFT3T, 1, rows, cols, 8, _radix8_planes(group, 0, first, 1, real_dt), flags)


def _fft3_op(stages: list[tuple], lev: int, n: int, real_dt: np.dtype) -> tuple | None:
    """The natural-order radix-8 op over stages ``lev .. lev + 2`` (stride ``s`` = 2**lev >= 8),
    or None: octets ``J0 + {0, s, .., 7s} + k``, visited J0 outer, k inner."""
    s = 1 << lev
    group = _common_forms(stages[lev:lev + 3], n)
    flags = _radix8_flags(group) if s >= 8 else None
    if flags is None:
        return None
    first = (np.arange(0, n, 8 * s)[:, None] + np.arange(s)).reshape(-1, 8)
    return (_OP_FFT3, s, 0, 0, 8, _radix8_planes(group, lev, first, s, real_dt), flags)


def _fusable(a: tuple, b: tuple, s: int, rows: int, cols: int) -> bool:
    """Stages of strides s and 2s can run as one radix-4 pass: both FFT stages with the same
    flags and no scale, on the same side of the layout change, with runs of 8 or more."""
    if a[0] != _OP_FFT or b[0] != _OP_FFT or a[1] != b[1] or a[1] & _FFT_SCALED:
        return False
    if s < rows:
        return 2 * s < rows and cols >= 8
    return s >= 8


def _common_forms(stages: list[tuple], n: int, scaled: bool = True) -> list[tuple]:
    """FFT stages as one form when they differ only in how general their twiddles are
    (``addsub`` < ``fft-real`` < ``fft``): the simpler ones get explicit planes of ones (and zero
    imaginary parts), so the group can run as one radix-4 or radix-8 pass, which loads and stores
    the vector once instead of once per stage, for a few multiplies by one. (A learned DFT-256
    ends ``fft, addsub``; a DIT FFT starts ``addsub, fft, fft``.) Scale planes stay where they are
    (``scaled=False``: a stage with one keeps the group as it is, for the radix-4 pass, which has
    none). Anything else (a general stage, DIT against DIF) comes back unchanged."""
    if any(st[0] != _OP_FFT for st in stages) or (not scaled and any(st[1] & _FFT_SCALED for st in stages)):
        return stages
    level = {_FFT_UNIT: 0, _FFT_REALW: 1, 0: 2}
    levels = [level[st[1] & (_FFT_UNIT | _FFT_REALW)] for st in stages]
    dif = {st[1] & _FFT_DIF for st in stages if not st[1] & _FFT_UNIT}
    if len(dif) > 1 or len(set(levels)) == 1:
        return stages
    top = max(levels)
    base = {0: _FFT_UNIT, 1: _FFT_REALW, 2: 0}[top] | (dif.pop() if dif else 0)
    one, zero = np.ones(n // 2), np.zeros(n // 2)
    out = []
    for (kind, flags, comps), lv in zip(stages, levels):
        scale = comps[-1:] if flags & _FFT_SCALED else []
        w = comps[:len(comps) - len(scale)]
        if lv < top:
            w = [one] if top == 1 else [one, zero] if lv == 0 else [w[0], zero]
        out.append((kind, base | (flags & _FFT_SCALED), w + scale))
    return out


def _fused_planes(comps_a: list[np.ndarray], comps_b: list[np.ndarray], lev: int, n: int, rows: int,
                  real_dt: np.dtype) -> np.ndarray | None:
    """Twiddles of a radix-4 pass (stages ``lev`` and ``lev + 1``) in the order the C op visits its
    quads, blocks of 8 quads holding the planes of pair (0, 1), (2, 3) (stage ``lev``), (0, 2)
    and (1, 3) (stage ``lev + 1``). The quads' natural positions are computed, so the pair index
    of each member pair is :func:`bfly_cli.layout.pair_index` of its first member."""
    if not comps_a:
        return None
    s = 1 << lev
    cols = n // rows
    if s < rows:  # rows r + {0, s, 2s, 3s} (r without bits s, 2s), runs of cols; view -> natural
        r0 = np.array([r for r in range(rows) if not r & (3 * s)])
        view = (r0[:, None] * cols + np.arange(cols)).ravel()
        first, step = (view % cols) * rows + view // cols, s
    else:  # J0 + {0, s, 2s, 3s} + k
        first, step = (np.arange(0, n, 4 * s)[:, None] + np.arange(s)).ravel(), s
    members = [first + q * step for q in range(4)]
    sets = [(comps_a, lev, members[0]), (comps_a, lev, members[2]),
            (comps_b, lev + 1, members[0]), (comps_b, lev + 1, members[1])]
    planes = [c[pair_index(lv, pos)] for comps, lv, pos in sets for c in comps]
    blocks = np.stack(planes).reshape(len(planes), n // 32, 8).transpose(1, 0, 2)
    return np.ascontiguousarray(blocks, dtype=real_dt)


def _blocked(comps: list[np.ndarray], s: int, rows: int, cols: int, real_dt: np.dtype) -> tuple[int, np.ndarray | None]:
    """Per-pair planes (each of length N/2, pair order) in the order the stage visits the pairs,
    cut into blocks of ``width`` = min(8, run) pairs whose planes lie back to back: one stream.
    On the transposed view (``s < rows``) pair ``i = blk * rows/2 + c`` is visited as ``[c, blk]``."""
    run = cols if s < rows else s
    width = min(8, run)
    if not comps:
        return width, None
    half = comps[0].size
    if s < rows:
        comps = [c.reshape(cols, rows // 2).T for c in comps]
    planes = np.stack([np.reshape(c, half) for c in comps])
    blocks = planes.reshape(len(planes), half // width, width).transpose(1, 0, 2)
    return width, np.ascontiguousarray(blocks, dtype=real_dt)


def _rows(n: int) -> int:
    """Height of the transposed view: 8 when rows of N/8 are long enough to vectorize, 1 (none)
    for tiny N, where scalar code costs nothing worth saving."""
    if n >= 64:
        return _ROWS
    return n // 8 if n >= 16 else 1


def fuse_load(ops: list[tuple], n: int) -> list[tuple]:
    """Let the first radix-8 pass read the input itself when the load's gather allows it.

    A plan that starts with a gather (the permutation, merged with the move into the transposed
    view) and then an FFT3T reads every input element by index: a quarter to a third of a learned
    DFT's time at N = 256..4096. The FFT3T takes 8 columns of the view at a time, row by row.
    When the columns can be grouped into blocks of 8 lanes such that, in every row, the 8 lanes
    read 8 *consecutive* input elements, the pass can load each row with two vector loads from
    the input instead (a LOAD8 op before it, holding each block's first element per row and its
    lanes' columns; the FFT3T's twiddles reordered into that lane order). A bit-reversal
    permutation has this shape: the three stages of strides 1, 2, 4 after it combine inputs
    N/2, N/4, N/8 apart, and neighbouring columns hold neighbouring inputs. Anything else keeps
    the gather."""
    if len(ops) < 2 or ops[0][0] != _OP_GATHER or ops[0][6] != 0 or ops[1][0] != _OP_FFT3T:
        return ops
    cols = ops[1][3]
    view = np.asarray(ops[0][5], dtype=np.int64).reshape(8, cols)  # view[r, col]: the input element read there
    lanes = np.argsort(view[0], kind="stable").reshape(cols // 8, 8)  # columns by their row-0 input
    first = view[:, lanes[:, 0]]  # (8 rows, blocks)
    if not np.array_equal(view[:, lanes], first[:, :, None] + np.arange(8)):
        return ops
    kind, s, rows, _, cstride, data, flags = ops[1]
    if data is not None:  # (blocks, planes, 8 lanes) in column order -> the lanes' order
        planes = data.shape[1]
        by_col = data.transpose(0, 2, 1).reshape(cols, planes)
        data = np.ascontiguousarray(by_col[lanes.ravel()].reshape(cols // 8, 8, planes).transpose(0, 2, 1))
    load = np.concatenate([first.T.ravel(), lanes.ravel()]).astype(np.int32)
    return [(_OP_LOAD8, 0, 8, cols, 0, load, 0), (kind, s, rows, cols, cstride, data, flags), *ops[2:]]


# Positions (within a group of 8) of the first member of each block of stages 0, 1, 2 ("slots").
_FIRST_POSITIONS = (np.array([0, 2, 4, 6]), np.array([0, 1, 4, 5]), np.array([0, 1, 2, 3]))
_REV3 = np.array([0, 4, 2, 6, 1, 5, 3, 7])


def canonical_inputs(perm: np.ndarray, twiddle: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The same product ``B P`` with the members of every group of 8 in bit-reversed input order.

    The first three stages of ``B`` (strides 1, 2, 4) mix the 8 positions ``8g .. 8g + 7`` that
    ``P`` fills. A learned DFT reads inputs ``low_g + (N/8) t`` there, in a member order that
    differs from group to group: the solver is free to choose which member of a pair comes first.
    Swapping the inputs of a stage-0 block, the two stage-0 blocks under a stage-1 block, or the
    two halves under a stage-2 block is a symmetry of the network: it swaps the columns of the
    blocks at that level (``[[a, b], [c, d]] -> [[b, a], [d, c]]``, which keeps the FFT form
    ``ad + bc = 0`` that :func:`specialize` looks for), moves the blocks below it with their
    members, and moves the entries of ``P``; the product is unchanged. Undoing every group's
    choice gives all groups the order ``t = rev3(r)``, which lets :func:`fuse_load` read the
    input with vector loads. ``(perm, twiddle)`` come back unchanged when a group is not of that
    form (its members are not ``N/8`` apart, or no such swaps reach the order)."""
    n = perm.size
    cols = n // 8
    if n < 64 or twiddle.ndim != 4 or twiddle.shape[0] < 3:
        return perm, twiddle
    p = perm.reshape(cols, 8).astype(np.int64)
    offsets = p - p.min(axis=1, keepdims=True)  # a group's inputs: low_g + (N/8) t, t = 0..7 in some order
    if (offsets % cols).any() or not np.array_equal(np.sort(offsets // cols, axis=1), np.tile(np.arange(8), (cols, 1))):
        return perm, twiddle
    first = [8 * np.arange(cols)[:, None] + pos for pos in _FIRST_POSITIONS]
    blocks = [twiddle[k][pair_index(k, first[k])].copy() for k in range(3)]  # (cols, 4 slots, 2, 2)
    p = p.copy()
    for level in (2, 1, 0):
        for part in range(4 >> level):  # the sub-trees of this level: 1 group, 2 halves, 4 pairs
            size = 2 << level
            lo = part * size
            top = (p[:, lo] - p.min(axis=1)) // cols  # the t of the sub-tree's first member
            swap = (top & (1 << (2 - level))) != 0  # rev3: first members have the bit of t for this level clear
            _swap_subtree(blocks, p, swap, level, lo)
    t = (p - p.min(axis=1, keepdims=True)) // cols
    if not (t == _REV3).all():
        return perm, twiddle
    out = twiddle.copy()
    for k in range(3):
        out[k][pair_index(k, first[k])] = blocks[k]
    return p.reshape(n).astype(perm.dtype), out


def _swap_subtree(blocks: list[np.ndarray], p: np.ndarray, swap: np.ndarray, level: int, lo: int) -> None:
    """In the groups where ``swap`` holds, exchange the two halves of the sub-tree of ``2 << level``
    positions starting at ``lo``: the columns of its level-``level`` blocks, the blocks of the
    levels below, and the entries of ``p``."""
    if not swap.any():
        return
    half = 1 << level
    order = np.arange(8)
    order[lo:lo + half], order[lo + half:lo + 2 * half] = np.arange(lo + half, lo + 2 * half), np.arange(lo, lo + half)
    p[swap] = p[swap][:, order]
    for k in range(level + 1):
        slot_of = {int(pos): j for j, pos in enumerate(_FIRST_POSITIONS[k])}
        inside = [j for j, pos in enumerate(_FIRST_POSITIONS[k]) if lo <= pos < lo + 2 * half]
        if k == level:  # this level's blocks mix the two halves: their inputs swap
            sub = blocks[k][swap]
            sub[:, inside] = sub[:, inside][..., ::-1]
            blocks[k][swap] = sub
        else:  # blocks below move with their members
            moved = [slot_of[int(order[_FIRST_POSITIONS[k][j]])] for j in range(4)]
            blocks[k][swap] = blocks[k][swap][:, moved]
