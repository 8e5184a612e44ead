"""The factors object: a chain of simple steps whose product is the learned matrix.

A :class:`Factors` is a list of :class:`Step` applied *in order* to a column vector ``x``:

``permutation``  ``data``: int64 array ``perm`` of length N; ``x <- x[perm]``.
``butterfly``    ``data``: twiddles of shape ``(L, N/2, 2, 2)``, real or complex, L = log2 N.
                 Stage ``l`` (applied in order l = 0 .. L-1) has stride ``s = 2**l``; its pair
                 ``i`` in ``[0, N/2)`` has ``low = i % s`` and ``pos = 2*(i - low) + low`` and does
                 ``(x[pos], x[pos+s]) <- data[l, i] @ (x[pos], x[pos+s])``.
                 This is the one canonical twiddle layout of the project ("increasing stride").
``diagonal``     ``data``: vector ``d`` of length N; ``x <- d * x``.
``real``         no data; ``x <- Re(x)``.
``rank2``        ``data``: real stages of shape ``(L, N/2, 2, 2, 2, 2)``: a butterfly whose every
                 position carries a 2-slot state (input in slot 0, output read from slot 0);
                 ``data[l, i, o, s, c, r]`` maps slot r of pair member c to slot s of member o.
                 The exact form of real transforms whose blocks have rank 2 (DCT, DST, ...).

The matrix is therefore the product of the steps' matrices in *reverse* order, and its
``structure`` string reads like that product: ``[permutation, butterfly]`` is ``"BP"``.

The multiply here is the plain numpy reference: every fast path (compiled kernel, torch layer)
is tested against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from .errors import FormatError

STEP_KINDS = ("permutation", "butterfly", "diagonal", "real", "rank2")
_LETTER = {"permutation": "P", "butterfly": "B", "diagonal": "D", "real": "R", "rank2": "Q"}


@dataclass
class Step:
    """One factor: ``kind`` is one of :data:`STEP_KINDS`; ``data`` is None only for ``real``."""

    kind: str
    data: np.ndarray | None = None

    def n_params(self) -> int:
        """Stored numbers that are free parameters (a permutation is structure, not parameters)."""
        if self.kind in ("butterfly", "diagonal"):
            return int(self.data.size)
        if self.kind == "rank2":
            return rank2_param_count(self.data.shape[0], 2 * self.data.shape[1])
        return 0

    def n_real_params(self) -> int:
        """:meth:`n_params` in real numbers (a complex number counts twice).

        The fair unit for comparing a real rank-2 chain with a complex butterfly, or either with
        the dense matrix: ``n_params`` counts a complex twiddle as one number.
        """
        complex_ = self.data is not None and np.iscomplexobj(self.data)
        return self.n_params() * (2 if complex_ else 1)


@dataclass
class Factors:
    """A learned factorization: ``n``, the ordered steps, and free-form metadata."""

    n: int
    steps: list[Step]
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate_steps(self.n, self.steps)

    @property
    def structure(self) -> str:
        """Product notation, outermost factor first (e.g. ``"BP"``, ``"RBP"``, ``"BPDBP"``)."""
        return "".join(_LETTER[s.kind] for s in reversed(self.steps))

    @property
    def dtype(self) -> np.dtype:
        """The widest numeric dtype among the steps' data (complex if any step is complex)."""
        dts = [s.data.dtype for s in self.steps if s.data is not None and s.kind != "permutation"]
        return np.result_type(*dts) if dts else np.dtype(np.float64)

    @property
    def is_real_output(self) -> bool:
        """True when the product is a real matrix (real data throughout, or a final ``real``)."""
        return self.steps[-1].kind == "real" or not np.iscomplexobj(np.empty(0, self.dtype))

    def n_params(self) -> int:
        """Number of stored real-or-complex scalars that are learned (twiddles and diagonals)."""
        return sum(s.n_params() for s in self.steps)

    def n_real_params(self) -> int:
        """Free parameters in real numbers (complex counted twice); see :meth:`Step.n_real_params`."""
        return sum(s.n_real_params() for s in self.steps)

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Reference multiply ``y = M x`` for every vector along the last axis of ``x``."""
        x = np.asarray(x)
        if x.shape[-1] != self.n:
            raise ValueError(f"last axis has length {x.shape[-1]}, expected {self.n}")
        for step in self.steps:
            x = apply_step(step, x)
        return x

    def to_dense(self, chunk: int = 256) -> np.ndarray:
        """The N x N matrix, built by applying the steps to the identity ``chunk`` rows at a time.

        Chunking keeps every temporary of the reference multiply small enough to stay in cache;
        applying to the whole identity at once is several times slower at N >= 4096.
        """
        out_dtype = np.finfo(self.dtype).dtype if self.steps[-1].kind == "real" else self.dtype
        return _dense_by_chunks(self.apply, self.n, self.dtype, out_dtype, chunk)

    def to_dense_fast(self, chunk: int = 64) -> np.ndarray:
        """The N x N matrix through the compiled kernel when it runs every step, else :meth:`to_dense`.

        For measuring errors (``learn()``, route checks), where the reference multiply is the
        bottleneck at large N (N = 4096: seconds against a few tenths). The result equals
        :meth:`to_dense` up to rounding.
        """
        from . import kernel  # lazy: kernel imports this module

        if not kernel.available() or kernel.unsupported_kinds(self):
            return self.to_dense()
        plan = kernel.Plan(self, self.dtype)
        return _dense_by_chunks(plan.apply, self.n, plan.in_dtype, plan.out_dtype, chunk)


def _dense_by_chunks(apply, n: int, in_dtype, out_dtype, chunk: int) -> np.ndarray:
    """Columns of a linear map from ``apply`` on identity rows, ``chunk`` rows per call."""
    dense = np.empty((n, n), dtype=out_dtype)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        rows = np.zeros((stop - start, n), dtype=in_dtype)
        rows[np.arange(stop - start), np.arange(start, stop)] = 1
        dense[:, start:stop] = apply(rows).T
    return dense


def apply_step(step: Step, x: np.ndarray) -> np.ndarray:
    """Apply one step along the last axis (reference implementation)."""
    if step.kind == "permutation":
        return x[..., step.data]
    if step.kind == "butterfly":
        return butterfly_multiply(step.data, x)
    if step.kind == "diagonal":
        return x * step.data
    if step.kind == "real":
        return np.real(x).copy()
    if step.kind == "rank2":
        return rank2_multiply(step.data, x)
    raise ValueError(f"unknown step kind {step.kind!r}")


def butterfly_multiply(twiddle: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Apply the butterfly ``F_{L-1} ... F_0`` (stride 1 first) along the last axis of ``x``.

    Each stage views the vector as ``(N / 2s, 2, s)``: pairs are ``(block, 0, low)`` and
    ``(block, 1, low)``, which is exactly ``pos = 2*(i - low) + low`` with ``i = block*s + low``.
    """
    levels, half = twiddle.shape[:2]
    n = 2 * half
    batch = x.shape[:-1]
    out = np.array(x, dtype=np.result_type(x.dtype, twiddle.dtype))
    for lev in range(levels):
        s = 1 << lev
        v = out.reshape(*batch, n // (2 * s), 2, s)
        t = twiddle[lev].reshape(n // (2 * s), s, 2, 2)
        x0, x1 = v[..., 0, :], v[..., 1, :]
        y0 = t[..., 0, 0] * x0 + t[..., 0, 1] * x1
        v[..., 1, :] = t[..., 1, 0] * x0 + t[..., 1, 1] * x1
        v[..., 0, :] = y0
    return out


def rank2_multiply(stages: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Apply a ``rank2`` step along the last axis: slot state, stride 1 first, read slot 0."""
    levels, half = stages.shape[:2]
    n = 2 * half
    batch = x.shape[:-1]
    state = np.zeros((*batch, n, 2), dtype=np.result_type(x.dtype, stages.dtype))
    state[..., 0] = x
    for lev in range(levels):
        s = 1 << lev
        v = state.reshape(*batch, n // (2 * s), 2, s, 2)
        t = stages[lev].reshape(n // (2 * s), s, 2, 2, 2, 2)
        state = np.einsum("bsoprq,...brsq->...bosp", t, v).reshape(*batch, n, 2)
    return state[..., 0].copy()


def rank2_param_count(levels: int, n: int) -> int:
    """Free entries of a ``rank2`` step: 4x4 blocks inside, 4x2 / 2x4 at the real ends."""
    if levels == 1:
        return 2 * n
    return (n // 2) * (8 + 8 + 16 * (levels - 2))


def pair_positions(n: int, level: int) -> np.ndarray:
    """Lower position ``pos`` of every pair ``i`` of the stage with stride ``2**level`` (the layout above)."""
    s = 1 << level
    i = np.arange(n // 2)
    low = i % s
    return 2 * (i - low) + low


def bit_reversal(n: int) -> np.ndarray:
    """The bit-reversal permutation of ``range(n)`` (an involution, so ``R = R^T = R^-1``).

    It maps a decreasing-stride butterfly onto an increasing-stride one (``R B R``), which is how
    inverses and the paper's decreasing-stride model are stored with this single layout.
    """
    levels = n.bit_length() - 1
    idx = np.arange(n)
    rev = np.zeros(n, dtype=np.int64)
    for bit in range(levels):
        rev |= ((idx >> bit) & 1) << (levels - 1 - bit)
    return rev


def dense_real_params(matrix: np.ndarray) -> int:
    """Real numbers of a dense matrix (a complex entry counts twice): what ``n_real_params`` is
    compared with."""
    return int(matrix.size) * (2 if np.iscomplexobj(matrix) else 1)


def log2_exact(n: int) -> int:
    """log2 of a power of two, or -1 when ``n`` is not one."""
    return n.bit_length() - 1 if n >= 1 and n & (n - 1) == 0 else -1


def validate_steps(n: int, steps: Iterable[Step]) -> None:
    """Check kinds, shapes, dtypes and values; raise :class:`FormatError` naming the bad step."""
    steps = list(steps)
    levels = log2_exact(n)
    if levels < 1:
        raise FormatError(f"n = {n} is not a power of two >= 2")
    if not steps:
        raise FormatError("a factorization needs at least one step")
    for k, step in enumerate(steps):
        where = f"step {k} ({step.kind})"
        if step.kind not in STEP_KINDS:
            raise FormatError(f"step {k} has unknown kind {step.kind!r}; known: {', '.join(STEP_KINDS)}")
        if step.kind == "real":
            if step.data is not None:
                raise FormatError(f"{where} must not carry data")
            continue
        data = step.data
        if not isinstance(data, np.ndarray):
            raise FormatError(f"{where} has no data array")
        expected = {"permutation": (n,), "butterfly": (levels, n // 2, 2, 2), "diagonal": (n,),
                    "rank2": (levels, n // 2, 2, 2, 2, 2)}[step.kind]
        if data.shape != expected:
            raise FormatError(f"{where} has shape {data.shape}, expected {expected}")
        if step.kind == "permutation":
            if data.dtype.kind not in "iu":
                raise FormatError(f"{where} must hold integers, not {data.dtype}")
            if not np.array_equal(np.sort(data), np.arange(n)):
                raise FormatError(f"{where} is not a permutation of 0..{n - 1}")
        else:
            if data.dtype.kind not in "fc":
                raise FormatError(f"{where} must hold floating-point numbers, not {data.dtype}")
            if not np.all(np.isfinite(data)):
                raise FormatError(f"{where} holds NaN or Inf values")
