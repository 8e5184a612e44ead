"""Fast CPU application of factors: the public face of the compiled kernel ``bfly_cli._kernel``.

Use :func:`apply` for one-off products (same semantics and result dtype as
:meth:`bfly_cli.factors.Factors.apply_reference`, the numpy reference) and :class:`Plan` when the same
factors are applied many times (benchmarks, pipelines): a plan converts the twiddles once, so each
call only moves the vectors.

Why the preparation lives here, in numpy, and not in C: the C side then runs a short list of
simple operations (see ``_kernel.c``), and every layout decision is readable Python:

* one working precision (float32 or float64) for the whole chain, complex ("split" into separate
  real and imaginary planes) when any step or the input is complex;
* each butterfly stage's twiddles in the order the stage uses them, in blocks of 8 pairs holding
  the planes a, b, c, d (complex: re and im of each) back to back: one sequential stream;
* a ``rank2`` step keeps a second (slot 1) plane per real plane next to the vector; its stages
  store the 16 (first and last stage: 8) coefficients of each pair's 4x4 block as planes of 8
  pairs, like the butterfly twiddles;
* the strides below ``_ROWS`` (1, 2, 4) run on the vector viewed transposed as a (R, N/R) matrix,
  where they mix whole rows, so they vectorize like the large strides instead of falling back to
  scalar code; entering and leaving that view are gathers, merged with any adjacent permutation.

When the extension was not built (no compiler at install time), or the factors hold a step kind the
C code has no op for (a newer kind than this build knows), everything still works through the
numpy reference and a single line on stderr says so, once per process and reason.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from typing import TYPE_CHECKING, Any

import numpy as np

from . import plan_cache
from .kernel_stages import (_FFT_REALW, _FFT_SCALED, _FFT_UNIT, _FLAG_FIRST, _FLAG_LAST, _FLAG_MIXED, _FLAG_STATE,
                            _FLAG_UNIT, _OP_BF, _OP_BFT, _OP_DIAG, _OP_FFT, _OP_FFT2, _OP_FFT2T, _OP_FFTT, _OP_GATHER,
                            _OP_R2, _OP_R2T, _OP_REAL, _OP_UNVIEW, _OP_FFT3T, _OP_FFT3, _OP_LOAD8, _butterfly_ops,
                            _gather, _planes, _rows, canonical_inputs, fuse_load)
from .kernel_rank2 import unit_form
from .step_kinds import kind_of

if TYPE_CHECKING:  # annotations only: factors imports this module (to_dense_fast), not the reverse
    from .factors import Factors, Step

try:  # the compiled extension is optional: a failed build must not break the package
    from . import _kernel as _ext
except ImportError:  # pragma: no cover - exercised by monkeypatching in the tests
    _ext = None

_KERNEL_DTYPES = tuple(np.dtype(d) for d in ("float32", "float64", "complex64", "complex128"))
# Results this large are recycled by their plan once dropped (Plan._new_output): from 4 MiB, where
# numpy's allocator takes fresh pages from the system, up to 256 MiB, the most a plan keeps alive.
RECYCLE_BYTES = (1 << 22, 1 << 28)
_FALLBACK_MESSAGE = "bfly: compiled kernel not built; using the numpy reference"
_UNSUPPORTED_MESSAGE = "bfly: the compiled kernel has no op for step kind {kinds}; using the numpy reference (slower)"
_warned: set[str] = set()

__all__ = ["available", "apply", "Plan", "default_threads", "compiled_kinds"]


def available() -> bool:
    """True when the compiled extension ``bfly_cli._kernel`` was built and imports."""
    return _ext is not None


def default_threads() -> int:
    """All cores this process may run on (the ``threads`` default)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _warn_once(message: str) -> None:
    """Say once per process (per message) that the slow path is in use, so a slow run is never a
    mystery and a batch loop does not flood stderr."""
    if message not in _warned:
        _warned.add(message)
        print(message, file=sys.stderr)


def unsupported_kinds(factors: Factors) -> list[str]:
    """Step kinds of ``factors`` the compiled kernel has no op for (sorted, unique): such factors
    run on the numpy reference instead of raising, so a kind registered in
    :mod:`bfly_cli.step_kinds` before it has a C op (or data outside an op's contract) still works."""
    kinds = {step.kind for step in factors.steps} - compiled_kinds()
    if any(s.kind == "rank2" and s.data.dtype.kind == "c" for s in factors.steps):
        kinds.add("rank2")  # the C op is real 4x4 blocks; complex rank2 data is outside its contract
    return sorted(kinds)


def apply(factors: Factors, x: Any, *, threads: int | None = None) -> np.ndarray:
    """``y = M x`` for every vector along the last axis of ``x``: exactly :meth:`Factors.apply_reference`'s
    semantics and result dtype, computed by the compiled kernel when it is built.

    The whole chain runs in the precision of the result (float64 when the input or any factor is
    float64), so a float32 vector through float64 factors is computed in float64, as numpy would.
    Inputs the kernel does not cover (integer-only chains) go to the reference. The plan is
    cached (:mod:`bfly_cli.plan_cache`), so repeated calls cost what :meth:`Plan.apply` costs.
    """
    x = np.asarray(x)
    plan = plan_cache.plan_for_input(factors, x.dtype)  # built once per factors object and input dtype
    if plan is not None and plan._call is not None and (threads is None or threads == 1):
        y = plan._call(x)  # the common small call, shape checked in C (see Plan.apply)
        if y is not NotImplemented:
            return y
    if x.ndim == 0 or x.shape[-1] != factors.n:
        got = "a scalar" if x.ndim == 0 else f"last axis of length {x.shape[-1]}"
        raise ValueError(f"x has {got}, expected a last axis of length {factors.n}")
    return factors.apply_reference(x) if plan is None else plan.apply(x, threads=threads)


def plan_for_dtype(factors: Factors, x_dtype: np.dtype) -> "Plan | None":
    """The plan :func:`apply` runs for input of ``x_dtype``, or None when the result dtype is
    outside the kernel (integer-only chains): the reference runs then."""
    out_dtype = result_dtype(factors, x_dtype)
    if out_dtype not in _KERNEL_DTYPES:
        return None
    in_dtype = _with_precision(x_dtype if x_dtype.kind in "fc" else np.dtype(np.float64), out_dtype)
    return Plan(factors, in_dtype)


class Plan:
    """Factors prepared once for input vectors of one dtype; :meth:`apply` then runs at kernel speed.

    ``dtype`` is the input dtype (float32, float64, complex64 or complex128). Its precision is the
    working precision: the factor data are cast to it (float64 factors run in float32 for a float32
    plan: that is the point of asking for float32). ``out_dtype`` is what
    :meth:`Factors.apply_reference` would return for such input with the cast factors (complex for complex
    factors, real after a final ``real`` step; complex for complex input through a chain with a
    ``real`` step, whose real and imaginary parts run as two real inputs: see
    :attr:`Factors.real_linear`). Without the extension the plan applies the cast
    factors with the numpy reference (``compiled`` is False).

    ``stage_kinds`` says what each compiled op is (:func:`stage_kinds`): which butterfly stages
    run as FFT stages (:mod:`bfly_cli.kernel_stages`) and which stay general.
    """

    def __init__(self, factors: Factors, dtype: Any = np.float64, *, _special: bool = True) -> None:
        self.in_dtype = np.dtype(dtype)
        self.stage_kinds: list[str] = ["reference"]  # what each compiled op is (see stage_kinds())
        if self.in_dtype not in _KERNEL_DTYPES:
            raise ValueError(f"a plan takes float32, float64, complex64 or complex128 input, not {self.in_dtype}")
        self.n = factors.n
        self._threaded_batch = _threaded_batch(self.n)
        self._spare: list[np.ndarray] = []  # the last large result, for reuse (see _new_output)
        self._parts: Plan | None = None
        self._call = None
        if self.in_dtype.kind == "c" and factors.real_linear:  # see Factors.real_linear
            self._parts = Plan(factors, _with_precision(np.dtype(np.float64), self.in_dtype), _special=_special)
            self.factors, self.is_complex, self._core = self._parts.factors, True, self._parts._core
            self.stage_kinds = self._parts.stage_kinds
            self.out_dtype = result_dtype(self.factors, self.in_dtype)
            return
        self.factors = cast_factors(factors, self.in_dtype)
        self.out_dtype = result_dtype(self.factors, self.in_dtype)
        self.is_complex = self.in_dtype.kind == "c" or any(
            s.data is not None and s.data.dtype.kind == "c" for s in self.factors.steps)
        self._core = None
        self._call = None  # the compiled one-call path (see apply), when the extension has it
        self._fallback_note = _FALLBACK_MESSAGE
        missing = unsupported_kinds(self.factors)
        if missing:
            self._fallback_note = _UNSUPPORTED_MESSAGE.format(kinds=", ".join(repr(k) for k in missing))
        elif _ext is not None:
            double = self.in_dtype in (np.float64, np.complex128)
            ops = compile_ops(self.factors, self.is_complex, double, _special)
            self._core = _ext.Plan(self.n, self.is_complex, double, ops)
            self.stage_kinds = stage_kinds(ops)
            self._core.set_fast(self.in_dtype, self.out_dtype, self._threaded_batch, self, Plan._apply)
            self._call = self._core.call
            self.apply = self._core.apply  # type: ignore[method-assign]  # see apply()

    @property
    def compiled(self) -> bool:
        """True when :meth:`apply` runs the compiled kernel."""
        return self._core is not None

    def apply(self, x: Any, out: np.ndarray | None = None, *, threads: int | None = None) -> np.ndarray:
        """``M x`` along the last axis. ``x`` is converted to ``in_dtype`` (C order) only if it is
        not already; ``out`` (optional) must be a C-contiguous ``out_dtype`` array of ``x``'s shape
        and may be ``x`` itself when the dtypes agree. ``threads``: default all cores; batches too
        small to pay for a thread use fewer.

        The common small call (no ``out``, ``threads`` None or 1, ``x`` an ndarray already
        C-contiguous ``in_dtype``, a batch too small for threads: one thread whatever ``threads``
        says) runs entirely in C. A compiled plan replaces this method on the instance by the C
        ``apply`` of its core, which takes the same arguments, runs that case and hands every other
        call to :meth:`_apply`: at N = 256 a Python frame here plus ``numpy.empty`` cost as much as
        the FFT. This body is what runs without the extension (and documents the contract).
        """
        if out is None and (threads is None or threads == 1) and self._call is not None:
            y = self._call(x)
            if y is not NotImplemented:
                return y
        return self._apply(x, out, threads)

    def _apply(self, x: Any, out: np.ndarray | None, threads: int | None) -> np.ndarray:
        """The general path of :meth:`apply`: conversion, checks, ``out``, threads."""
        if x.__class__ is not np.ndarray or x.dtype is not self.in_dtype or not x.flags.c_contiguous:
            x = np.ascontiguousarray(x, dtype=self.in_dtype)  # (the checks above are cheaper than the call)
        if x.ndim == 0 or x.shape[-1] != self.n:
            raise ValueError(f"x has shape {x.shape}, expected a last axis of length {self.n}")
        if self._parts is not None:
            return self._apply_parts(x, out, threads)
        if self._core is None:
            _warn_once(self._fallback_note)
            result = self.factors.apply_reference(x)
            if out is None:
                return result
            out[...] = result
            return out
        fresh = out is None
        if fresh:
            out = self._new_output(x.shape)
        elif out.shape != x.shape or out.dtype != self.out_dtype or not out.flags.c_contiguous:
            raise ValueError(f"out must be a C-contiguous {self.out_dtype} array of shape {x.shape}")
        batch = x.size // self.n
        if threads is None and batch < self._threaded_batch:  # the common small call: no syscall, no checks
            self._core.run(x, out, 1)
        else:
            self._core.run(x, out, _thread_count(threads, batch, self.n))
        if fresh and RECYCLE_BYTES[0] <= out.nbytes <= RECYCLE_BYTES[1] and not self._spare:
            self._spare.append(out)  # reused by the next call once the caller has dropped it
        return out

    def _new_output(self, shape: tuple[int, ...]) -> np.ndarray:
        """An output array: the previous large result when nothing but this plan holds it any
        more, else a new one.

        A large new array is fresh pages from the system, and each page faults on first write:
        measured at N = 16384, batch 256 (32 MiB of complex64), 30 of 100 µs per vector at 1 thread,
        and the faults do not run in parallel, so 2 threads gained nothing. A caller looping over
        batches (``y = plan.apply(x)``, use ``y``, next) drops each result before the next call, and
        then its buffer comes back. It is reused only when this plan's own reference is the only
        one left (:func:`_references`): a result the caller still holds, a view of it, a memoryview
        or a torch tensor sharing it keeps it alive and untouched. ``list.pop`` is atomic, so two
        threads applying one plan never get the same buffer. The cost: a plan keeps its last large
        result (``RECYCLE_BYTES``) alive until its next call or its end.
        """
        try:
            box = [self._spare.pop()]
        except IndexError:
            return np.empty(shape, self.out_dtype)
        if box[0].shape == shape and _references(box) == _ALONE:
            return box[0]
        return np.empty(shape, self.out_dtype)


    def _apply_parts(self, x: np.ndarray, out: np.ndarray | None, threads: int | None) -> np.ndarray:
        """Complex input through a real-linear chain: real and imaginary parts as two real inputs."""
        result = combine_parts(self._parts.apply(x.real, threads=threads), self._parts.apply(x.imag, threads=threads))
        if out is None:
            return result
        if out.shape != x.shape or out.dtype != self.out_dtype:
            raise ValueError(f"out must be a {self.out_dtype} array of shape {x.shape}")
        out[...] = result
        return out


def _references(box: list) -> int:
    """``sys.getrefcount`` of the one item of ``box``. What that count includes (the call's
    argument, the evaluation stack) differs between Python versions, so :data:`_ALONE` is measured
    by this same function on an item that only its list holds, never assumed."""
    return sys.getrefcount(box[0])


_ALONE = _references([np.empty(0)])


def combine_parts(re: np.ndarray, im: np.ndarray) -> np.ndarray:
    """``re + i im`` in the complex dtype of their precision, without complex arithmetic when both
    are real (``1j * im`` would turn an infinite part into NaN)."""
    ctype = np.result_type(re.dtype, im.dtype, np.complex64)
    if re.dtype.kind == "c" or im.dtype.kind == "c":
        return (re + 1j * im).astype(ctype, copy=False)
    out = np.empty(re.shape, ctype)
    out.real, out.imag = re, im
    return out



def _thread_count(threads: int | None, batch: int, n: int) -> int:
    """Threads worth using: each extra one must get at least 2^16 elements x stages of work
    (about 40 us at N = 1024 in single precision). The kernel's workers persist between calls, so
    back-to-back calls gain from far less, but a worker that has gone to sleep takes tens of
    microseconds to wake, and below this a lone call would lose that much."""
    if threads is not None and int(threads) < 1:
        raise ValueError(f"threads must be >= 1, not {threads}")
    work = batch * n * max(1, n.bit_length() - 1)
    limit = min(batch, 1 + work // (1 << 16))
    if limit <= 1:  # a small call: no need to ask the OS how many cores there are (a syscall)
        return 1
    wanted = default_threads() if threads is None else int(threads)
    return max(1, min(wanted, limit))


def _threaded_batch(n: int) -> int:
    """The smallest batch for which :func:`_thread_count` may give more than one thread: below it
    :meth:`Plan.apply` skips that function (a batch-1 call at small N costs about a microsecond,
    and every Python-level step shows)."""
    work = n * max(1, n.bit_length() - 1)
    return max(2, -(-(1 << 16) // work))


def result_dtype(factors: Factors, x_dtype: Any) -> np.dtype:
    """The dtype :meth:`Factors.apply_reference` returns for input of ``x_dtype``, found without computing:
    each step promotes as its registered kind says (:mod:`bfly_cli.step_kinds`)."""
    dt = np.dtype(x_dtype)
    complex_in = dt.kind == "c" and factors.real_linear  # real and imaginary parts run apart
    if complex_in:
        dt = np.real(np.empty(0, dt)).dtype
    for step in factors.steps:
        dt = kind_of(step.kind).result_dtype(dt, None if step.data is None else step.data.dtype)
    return np.result_type(dt, np.complex64) if complex_in else dt


def _with_precision(dtype: np.dtype, like: np.dtype) -> np.dtype:
    """``dtype``'s kind (real or complex) with ``like``'s precision (single or double)."""
    double = np.dtype(like).itemsize == (8 if np.dtype(like).kind == "f" else 16)
    if np.dtype(dtype).kind == "c":
        return np.dtype(np.complex128 if double else np.complex64)
    return np.dtype(np.float64 if double else np.float32)


def cast_factors(factors: Factors, dtype: Any) -> Factors:
    """A copy of ``factors`` whose float/complex data have ``dtype``'s precision (kinds kept).

    Built with :func:`dataclasses.replace` (which validates again) so this module needs no import
    of :mod:`bfly_cli.factors`, which imports it.
    """
    steps = [step if step.data is None or kind_of(step.kind).indices
             else dataclasses.replace(step, data=step.data.astype(_with_precision(step.data.dtype, np.dtype(dtype))))
             for step in factors.steps]
    return dataclasses.replace(factors, steps=steps, meta=dict(factors.meta))


# ---- compiling factors into the kernel's op list -------------------------------------------------


def compile_ops(factors: Factors, is_complex: bool, double: bool, special: bool = True) -> list[tuple]:
    """The op tuples ``(kind, s, rows, cols, cstride, data[, flags])`` that ``_kernel.Plan`` runs,
    with all data as planes of float64 (``double``) or float32. ``special``: let butterfly
    stages of FFT form run as FFT ops (see :mod:`bfly_cli.kernel_stages`)."""
    real_dt = np.dtype(np.float64 if double else np.float32)
    plain = _compiled_steps(factors.steps, factors.n, is_complex, real_dt, special)
    if not special or len(plain) < 2 or plain[0][0] != _OP_GATHER or plain[1][0] != _OP_FFT3T:
        return plain  # no radix-8 pass right after the load: nothing to fuse
    fused = fuse_load(plain, factors.n)
    if fused[0][0] != _OP_LOAD8:  # reorder the octets' members, which only pays through the fused load
        moved = fuse_load(_compiled_steps(_canonical_steps(factors.steps), factors.n, is_complex, real_dt, special), factors.n)
        fused = moved if moved and moved[0][0] == _OP_LOAD8 else plain
    return fused


def _compiled_steps(steps: list[Step], n: int, is_complex: bool, real_dt: np.dtype, special: bool) -> list[tuple]:
    """Every step's ops in order, consecutive gathers merged."""
    ops: list[tuple] = []
    for step in steps:
        ops.extend(_step_ops(step, n, is_complex, real_dt, special))
    return _merge_gathers(ops, n)


def _canonical_steps(steps: list[Step]) -> list[Step]:
    """The steps with every permutation that feeds a butterfly reordered by
    :func:`~bfly_cli.kernel_stages.canonical_inputs` (the same product)."""
    from .factors import Step  # (factors imports this module)

    steps = list(steps)
    for k in range(len(steps) - 1):
        if kind_of(steps[k].kind).name == "permutation" and kind_of(steps[k + 1].kind).name == "butterfly":
            perm, tw = canonical_inputs(steps[k].data, steps[k + 1].data)
            steps[k], steps[k + 1] = Step(steps[k].kind, perm), Step(steps[k + 1].kind, tw)
    return steps


def _step_ops(step: Step, n: int, is_complex: bool, real_dt: np.dtype, special: bool = True) -> list[tuple]:
    """The ops of one step; a kind without an op here is refused (``unsupported_kinds`` keeps
    such factors away from this function, on the reference)."""
    build = _OP_BUILDERS.get(kind_of(step.kind).name)
    if build is None:
        raise ValueError(f"the compiled kernel has no op for step kind {step.kind!r}")
    if build is _butterfly_ops or build is _rank2_ops:
        return build(step.data, n, is_complex, real_dt, special)
    return build(step.data, n, is_complex, real_dt)


def stage_kinds(ops: list[tuple]) -> list[str]:
    """What each op of a compiled op list is, in order: ``gather``, ``general`` (a butterfly stage
    with full 2x2 blocks), ``fft`` / ``fft-real`` / ``addsub`` (an FFT stage with complex, real or
    unit twiddles; ``+scale`` when it also scales its outputs; ``radix4 ...`` for two such stages
    run as one pass), ``gather (in the radix8 load)`` (the permutation read by the first radix-8
    pass itself), ``diagonal``, ``real``, ``rank2`` (``rank2 unit NN%`` when that share of its blocks
    of 8 pairs runs in the unit form of :mod:`bfly_cli.kernel_rank2`)."""
    names = {_OP_GATHER: "gather", _OP_BF: "general", _OP_BFT: "general", _OP_DIAG: "diagonal",
             _OP_REAL: "real", _OP_R2: "rank2", _OP_R2T: "rank2", _OP_UNVIEW: "gather",
             _OP_LOAD8: "gather (in the radix8 load)"}
    kinds = []
    for op in ops:
        if op[0] in (_OP_FFT3T, _OP_FFT3):
            base = "addsub" if op[6] & _FFT_UNIT else "fft-real" if op[6] & _FFT_REALW else "fft"
            unview = " +unview" if op[0] == _OP_FFT3T else ""
            kinds.append("radix8 " + base + ("+scale" if op[6] & 0x70 else "") + unview)
        elif op[0] in (_OP_R2, _OP_R2T) and op[6] & _FLAG_UNIT:
            kinds.append("rank2 unit 100%")
        elif op[0] in (_OP_R2, _OP_R2T) and op[6] & _FLAG_MIXED:
            blocks = op[5][-(op[5].size // (_R2_PLANES * 8 + 1)):]  # a flag per block after all planes
            kinds.append(f"rank2 unit {round(100 * float(np.mean(blocks != 0)))}%")
        elif op[0] in (_OP_FFT, _OP_FFTT, _OP_FFT2, _OP_FFT2T):
            flags = op[6]
            base = "addsub" if flags & _FFT_UNIT else "fft-real" if flags & _FFT_REALW else "fft"
            prefix = "radix4 " if op[0] in (_OP_FFT2, _OP_FFT2T) else ""
            kinds.append(prefix + base + ("+scale" if flags & _FFT_SCALED else ""))
        else:
            kinds.append(names[op[0]])
    return kinds


def _permutation_ops(data: np.ndarray, n: int, is_complex: bool, real_dt: np.dtype) -> list[tuple]:
    return [_gather(data)]


def _diagonal_ops(data: np.ndarray, n: int, is_complex: bool, real_dt: np.dtype) -> list[tuple]:
    return [(_OP_DIAG, 0, 0, 0, 0, _planes(data, is_complex, real_dt))]


def _real_ops(data: None, n: int, is_complex: bool, real_dt: np.dtype) -> list[tuple]:
    return [(_OP_REAL, 0, 0, 0, 0, None)] if is_complex else []


def _rank2_ops(stages: np.ndarray, n: int, is_complex: bool, real_dt: np.dtype, special: bool = True) -> list[tuple]:
    """One op per stage, with the butterfly's geometry (transposed view for strides below ``rows``).

    Slot 1 starts at zero and is never read after the step, so the first stage drops the
    coefficients that read it and the last those that write it (8 planes instead of 16): less to
    stream, and the C side never touches the uninitialised slot. The layout change back to natural
    order happens while slot 1 is live, so it carries the STATE flag (8x8 transposes of both
    slots' planes when they fit, else a gather). With ``special``, the blocks of 8 pairs that
    allow it run in the unit form (:mod:`bfly_cli.kernel_rank2`): those stages carry the MIXED
    flag and a flag per block after their planes, or, when every block is, the UNIT flag and
    only the 8 planes of the unit form. ``is_complex`` is unused: the C op is real
    (complex rank2 data is kept off it by :func:`unsupported_kinds`).
    """
    rows = _rows(n)
    cols = n // rows
    half = n // 2
    levels = stages.shape[0]
    orders = [_rank2_order(half, 1 << lev, rows, cols) for lev in range(levels)]
    plan = unit_form(stages, orders) if special and n >= 64 else None
    if plan is not None:
        stages = plan.stages
    ops: list[tuple] = []
    if rows > 1:
        ops.append(_gather(np.arange(n).reshape(cols, rows).T.ravel()))
    for lev in range(levels):
        s = 1 << lev
        flags = (_FLAG_FIRST if lev == 0 else 0) | (_FLAG_LAST if lev == levels - 1 else 0)
        coef = stages[lev][:, :, : 1 if lev == levels - 1 else 2, :, : 1 if lev == 0 else 2]
        coef = coef.reshape(half, -1)  # (pair, k) with k in (o, s, c, r) order
        unit = None if plan is None or not plan.unit[lev].any() else plan.unit[lev]
        if unit is not None:  # unit pairs: W0, W1 in (o, s, r) order in the first 8 planes
            coef = np.array(coef)
            coef[unit] = 0.0
            coef[unit, :8] = stages[lev][unit][:, :, :, 1, :].reshape(-1, 8)
            if unit.all():  # every block unit: 8 planes per block, no block flags
                coef = coef[:, :8]
        coef = coef[orders[lev]]  # the kernel's pair order (transposed stages: [c, blk])
        width = min(8, cols if s < rows else s)
        data = np.ascontiguousarray(coef.reshape(half // width, width, -1).transpose(0, 2, 1), dtype=real_dt)
        if unit is not None and unit.all():
            flags |= _FLAG_UNIT
        elif unit is not None:
            flags |= _FLAG_MIXED
            data = np.concatenate([data.ravel(), unit[orders[lev]][::8].astype(real_dt)])
        if s < rows:
            ops.append((_OP_R2T, s, rows, cols, width, data, flags))
            continue
        if s == rows:
            unview = rows == 8 and cols % 8 == 0
            ops.append((_OP_UNVIEW, 0, rows, cols, 0, None, _FLAG_STATE) if unview else
                       _gather(np.arange(n).reshape(rows, cols).T.ravel(), _FLAG_STATE))
        ops.append((_OP_R2, s, 0, 0, width, data, flags))
    if rows > 1 and levels <= rows.bit_length() - 1:  # every stage ran transposed: leave the view
        ops.append(_gather(np.arange(n).reshape(rows, cols).T.ravel()))
    return ops


_R2_PLANES = 16  # coefficient planes per block of 8 pairs in a middle rank2 stage (MIXED keeps all 16)


def _rank2_order(half: int, s: int, rows: int, cols: int) -> np.ndarray:
    """The pair index at each position of a rank2 stage's coefficient stream: natural order for
    strides from ``rows`` up; below, the transposed view's ``[c, blk]`` order (pair
    ``blk * rows/2 + c``), as in :func:`~bfly_cli.kernel_stages._butterfly_ops`."""
    pairs = np.arange(half)
    return pairs.reshape(cols, rows // 2).T.ravel() if s < rows else pairs


def _merge_gathers(ops: list[tuple], n: int) -> list[tuple]:
    """Fold consecutive gathers into one (``a`` then ``b`` reads ``a[b]``) and drop identities."""
    merged: list[tuple] = []
    for op in ops:
        if op[0] == _OP_GATHER and merged and merged[-1][0] == _OP_GATHER:
            prev = merged.pop()
            op = _gather(prev[5][op[5]], prev[6] | op[6])  # moving a dead slot 1 too is harmless
        merged.append(op)
    identity = np.arange(n, dtype=np.int32)
    return [op for op in merged if not (op[0] == _OP_GATHER and np.array_equal(op[5], identity))]


# The kinds this build has C ops for: the kernel's own declaration, next to the registry of kinds
# (bfly_cli.step_kinds). A registered kind missing here is not an error: it runs on the reference.
_OP_BUILDERS = {"permutation": _permutation_ops, "butterfly": _butterfly_ops, "diagonal": _diagonal_ops,
                "real": _real_ops, "rank2": _rank2_ops}


def compiled_kinds() -> frozenset[str]:
    """Step kinds the compiled kernel has ops for; the others fall back to the numpy reference."""
    return frozenset(_OP_BUILDERS)
