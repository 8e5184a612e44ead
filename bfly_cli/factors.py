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

What each kind is (letter, data shape, parameter count, reference multiply, dtype promotion) is
registered once, in :mod:`bfly_cli.step_kinds`; this module is the container and its checks. The
multiply here is the plain numpy reference (:mod:`bfly_cli.reference`): every fast path
(compiled kernel, torch layer) is tested against it: :meth:`Factors.apply_reference`, while
:meth:`Factors.apply` and ``f @ x`` run the kernel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

import numpy as np

from . import kernel
from .errors import FormatError
from .layout import bit_reversal, log2_exact, pair_positions
from .reference import butterfly_multiply, rank2_multiply, rank2_param_count
from .step_kinds import STEP_KINDS, check_step, kind_of

__all__ = [
    "Step", "Factors", "STEP_KINDS", "apply_step", "validate_steps", "dense_real_params",
    # the reference multiplies and index helpers, re-exported where callers have always found them
    "butterfly_multiply", "rank2_multiply", "rank2_param_count", "bit_reversal", "pair_positions", "log2_exact",
]


@dataclass
class Step:
    """One factor: ``kind`` is one of :data:`STEP_KINDS`; ``data`` is None only for ``real``."""

    kind: str
    data: np.ndarray | None = None

    def n_params(self) -> int:
        """Stored numbers that are free parameters (a permutation is structure, not parameters)."""
        return kind_of(self.kind).n_params(self.data)

    def n_real_params(self) -> int:
        """:meth:`n_params` in real numbers (a complex number counts twice).

        The fair unit for comparing a real rank-2 chain with a complex butterfly, or either with
        the dense matrix: ``n_params`` counts a complex twiddle as one number.
        """
        return kind_of(self.kind).n_real_params(self.data)


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
        return "".join(kind_of(s.kind).letter for s in reversed(self.steps))

    @property
    def dtype(self) -> np.dtype:
        """The widest numeric dtype among the steps' data (complex if any step is complex)."""
        dts = [s.data.dtype for s in self.steps if s.data is not None and not kind_of(s.kind).indices]
        return np.result_type(*dts) if dts else np.dtype(np.float64)

    @property
    def real_linear(self) -> bool:
        """True when a ``real`` step makes the chain linear over the reals only.

        ``Re(C x)`` is not ``Re(C) x`` for complex ``x``: such a chain is defined by what it does
        to real vectors (its dense matrix), so a complex input runs as two real ones (real and
        imaginary parts) and the results are recombined, the complex-linear extension.
        """
        return any(step.kind == "real" for step in self.steps)

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

    def apply(self, x: np.ndarray, *, threads: int | None = None) -> np.ndarray:
        """``y = M x`` for every vector along the last axis of ``x``, through the compiled kernel
        with a cached plan (:func:`bfly_cli.kernel.apply`); the numpy reference where the kernel does
        not run. Same result dtype and semantics as :meth:`apply_reference`, to rounding."""
        return kernel.apply(self, x, threads=threads)

    def apply_reference(self, x: np.ndarray) -> np.ndarray:
        """The numpy reference multiply ``y = M x`` along the last axis: plain, step by step, and the
        oracle every fast path (kernel, torch) is tested against."""
        x = np.asarray(x)
        if x.shape[-1] != self.n:
            raise ValueError(f"last axis has length {x.shape[-1]}, expected {self.n}")
        if self.real_linear and np.iscomplexobj(x):
            return kernel.combine_parts(self._apply_chain(np.ascontiguousarray(x.real)),
                                 self._apply_chain(np.ascontiguousarray(x.imag)))
        return self._apply_chain(x)

    def _apply_chain(self, x: np.ndarray) -> np.ndarray:
        """The steps in order, as they are (see :attr:`real_linear` for complex input)."""
        for step in self.steps:
            x = apply_step(step, x)
        return x

    def to_dense(self, chunk: int = 256) -> np.ndarray:
        """The N x N matrix, built by the reference multiply on the identity ``chunk`` rows at a time.

        Chunking keeps every temporary of the reference multiply small enough to stay in cache;
        applying to the whole identity at once is several times slower at N >= 4096.
        """
        out_dtype = np.finfo(self.dtype).dtype if self.steps[-1].kind == "real" else self.dtype
        return _dense_by_chunks(self.apply_reference, self.n, self._identity_dtype(), out_dtype, chunk)

    def _identity_dtype(self) -> np.dtype:
        """The dtype of the identity rows that build the dense matrix: real for a
        :attr:`real_linear` chain (its matrix is what it does to real vectors), else the factors'."""
        return np.finfo(self.dtype).dtype if self.real_linear else np.dtype(self.dtype)

    def to_dense_fast(self, chunk: int = 64) -> np.ndarray:
        """The N x N matrix through the compiled kernel when it runs every step, else :meth:`to_dense`.

        For measuring errors (``learn()``, route checks), where the reference multiply is the
        bottleneck at large N (N = 4096: seconds against a few tenths). The result equals
        :meth:`to_dense` up to rounding.
        """
        if not kernel.available() or kernel.unsupported_kinds(self):
            return self.to_dense()
        plan = kernel.Plan(self, self._identity_dtype())
        return _dense_by_chunks(plan.apply, self.n, plan.in_dtype, plan.out_dtype, chunk)

    def dense_blocks(self, chunk: int = 64) -> Iterator[tuple[slice, np.ndarray]]:
        """``(columns, M[:, columns])`` of the matrix, ``chunk`` columns at a time, through the
        kernel when it runs every step (as :meth:`to_dense_fast`), else the reference multiply.

        What learning measures its errors on (:func:`bfly_cli.metrics.error_report_blocks`): the
        whole dense matrix beside the target would be one more N x N copy at the memory peak.
        """
        if not kernel.available() or kernel.unsupported_kinds(self):
            return _column_blocks(self.apply_reference, self.n, self._identity_dtype(), chunk)
        plan = kernel.Plan(self, self._identity_dtype())
        return _column_blocks(plan.apply, self.n, plan.in_dtype, chunk)


    # ---- the linear-operator view: matrix semantics, the cached kernel plan, derived chains ----

    __array_ufunc__ = None  # ``x @ f`` with an ndarray on the left reaches __rmatmul__, not numpy

    @property
    def shape(self) -> tuple[int, int]:
        """``(N, N)``: the factors are a square matrix."""
        return (self.n, self.n)

    @property
    def ndim(self) -> int:
        return 2

    def __matmul__(self, x: Any) -> np.ndarray:
        """``M @ x`` for ``x`` of shape ``(N,)`` or ``(N, k)`` (columns are vectors, as for a matrix),
        through the compiled kernel with a cached plan (:mod:`bfly_cli.plan_cache`).

        :meth:`apply` acts on the *last* axis instead (rows are vectors); both give ``M``'s product.
        """
        if isinstance(x, Factors):
            return NotImplemented
        x = np.asarray(x)
        if x.ndim not in (1, 2) or x.shape[0] != self.n:
            raise ValueError(f"f @ x needs x of shape ({self.n},) or ({self.n}, k); got {x.shape}")
        return kernel.apply(self, x) if x.ndim == 1 else kernel.apply(self, x.T).T

    def __rmatmul__(self, x: Any) -> np.ndarray:
        """``x @ M`` for ``x`` of shape ``(N,)`` or ``(k, N)``: ``(M^T x^T)^T``.

        The transposed chain is kept (:meth:`_transpose_for_apply`): a fresh one per call would be
        a new object, so the plan cache, keyed on the object, would build a new plan every call
        (2.4 ms per ``x @ f`` at N = 256, against 11 us for ``f @ x``)."""
        x = np.asarray(x)
        if x.ndim not in (1, 2) or x.shape[-1] != self.n:
            raise ValueError(f"x @ f needs x of shape ({self.n},) or (k, {self.n}); got {x.shape}")
        return kernel.apply(self._transpose_for_apply(), x)

    def _transpose_for_apply(self) -> "Factors":
        """:meth:`transpose`, built once and reused while the steps are the same objects holding
        the same data arrays (replacing a step or its array builds it again; changing an array's
        numbers in place is not detected, as for :mod:`bfly_cli.plan_cache`)."""
        held = [(step, step.data) for step in self.steps]
        cached = self.__dict__.get("_transpose_cache")
        if cached is not None and len(cached[0]) == len(held) and all(
                a is c and b is d for (a, b), (c, d) in zip(held, cached[0])):
            return cached[1]
        transposed = self.transpose()
        self.__dict__["_transpose_cache"] = (held, transposed)
        return transposed

    @property
    def T(self) -> "Factors":
        """The transpose, as a chain of steps (see :meth:`transpose`)."""
        return self.transpose()

    @property
    def H(self) -> "Factors":
        """The adjoint (conjugate transpose), as a chain of steps (see :meth:`adjoint`)."""
        return self.adjoint()

    def transpose(self) -> "Factors":
        """``M^T`` as steps (:mod:`bfly_cli.chain_algebra`): exact, savable, runs on the kernel."""
        from .chain_algebra import transpose_steps

        return Factors(self.n, transpose_steps(self.steps), _derived_meta(self.meta, "transpose"))

    def adjoint(self) -> "Factors":
        """``M^H`` as steps: for a learned unitary transform (DFT, Hadamard, orthonormal DCT as
        ``QP``) this is its exact inverse, at the same cost."""
        from .chain_algebra import adjoint_steps

        return Factors(self.n, adjoint_steps(self.steps), _derived_meta(self.meta, "adjoint"))

    def inverse(self) -> "Factors":
        """``M^-1`` as steps when every step is invertible (permutations, diagonals without zeros,
        butterflies without singular 2x2 blocks); else :class:`~bfly_cli.chain_algebra.NotInvertible`
        naming the step (``rank2`` and ``real`` steps have no inverse as steps: use
        :meth:`adjoint` for an orthogonal one, or :meth:`as_linear_operator` with an iterative solver)."""
        from .chain_algebra import inverse_steps

        return Factors(self.n, inverse_steps(self.steps), _derived_meta(self.meta, "inverse"))

    def to_torch(self, *, bias: bool = False, device: Any = None, dtype: Any = None) -> Any:
        """A trainable ``nn.Linear``-shaped torch layer equal to these factors
        (:class:`bfly_cli.torch_linear.ButterflyLinear`; torch is imported only here)."""
        from .torch_linear import ButterflyLinear

        return ButterflyLinear.from_factors(self, bias=bias, device=device, dtype=dtype)

    def as_linear_operator(self) -> Any:
        """A :class:`scipy.sparse.linalg.LinearOperator` (matvec, matmat, rmatvec, rmatmat) for
        scipy's iterative solvers (``lsqr``, ``gmres``, ``cg``, ...)."""
        from scipy.sparse.linalg import LinearOperator

        adjoint = self.adjoint()
        dtype = kernel.result_dtype(self, np.dtype(np.float64))
        return LinearOperator(self.shape, matvec=self.__matmul__, rmatvec=adjoint.__matmul__,
                              matmat=self.__matmul__, rmatmat=adjoint.__matmul__, dtype=dtype)


def _derived_meta(meta: dict[str, Any], operation: str) -> dict[str, Any]:
    """Metadata of a derived chain: what it was derived from, not the original's claims (its
    errors, target and transform name describe the original matrix, not this one)."""
    source = meta.get("transform", "factors")
    return {"derived_from": source, "derivation": operation}


def _dense_by_chunks(apply, n: int, in_dtype, out_dtype, chunk: int) -> np.ndarray:
    """Columns of a linear map from ``apply`` on identity rows, ``chunk`` rows per call."""
    dense = np.empty((n, n), dtype=out_dtype)
    for cols, block in _column_blocks(apply, n, in_dtype, chunk):
        dense[:, cols] = block
    return dense


def _column_blocks(apply, n: int, in_dtype, chunk: int) -> Iterator[tuple[slice, np.ndarray]]:
    """``(columns, M[:, columns])`` of the linear map ``apply``, from identity rows ``chunk`` at a time."""
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        rows = np.zeros((stop - start, n), dtype=in_dtype)
        rows[np.arange(stop - start), np.arange(start, stop)] = 1
        yield slice(start, stop), apply(rows).T


def apply_step(step: Step, x: np.ndarray) -> np.ndarray:
    """Apply one step along the last axis (the registered reference multiply of its kind)."""
    return kind_of(step.kind).multiply(step.data, x)


def dense_real_params(matrix: np.ndarray) -> int:
    """Real numbers of a dense matrix (a complex entry counts twice): what ``n_real_params`` is
    compared with."""
    return int(matrix.size) * (2 if np.iscomplexobj(matrix) else 1)


def validate_steps(n: int, steps: Iterable[Step]) -> None:
    """Check kinds, shapes, dtypes and values; raise :class:`FormatError` naming the bad step."""
    steps = list(steps)
    levels = log2_exact(n)
    if levels < 1:
        raise FormatError(f"n = {n} is not a power of two >= 2")
    if not steps:
        raise FormatError("a factorization needs at least one step")
    for k, step in enumerate(steps):
        if step.kind not in STEP_KINDS:
            raise FormatError(f"step {k} has unknown kind {step.kind!r}; known: {', '.join(STEP_KINDS)}")
        check_step(kind_of(step.kind), n, step.data, f"step {k} ({step.kind})")
