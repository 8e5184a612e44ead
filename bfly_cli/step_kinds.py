"""The step kinds: the one table of what a factor step can be, read by every module that touches steps.

A step kind says, once: its name (the ``kind`` attribute of a file's step), its structure letter,
the shape its data must have for size N, whether its data are indices or numbers, how many free
parameters it holds, how it multiplies a vector (the numpy reference), and which dtype that
multiply returns. Validation (:mod:`bfly_cli.factors`), the file and export formats, the compiled
kernel's wrapper and the torch conversion all look kinds up here, and an unknown kind raises
:class:`UnknownStepKind` everywhere instead of falling through to some default.

Adding a kind: one :class:`StepKind` entry in :data:`KINDS` (with its reference multiply), then
the fast paths that must learn it: an op in ``kernel.py`` (or nothing: unknown ops run on the
reference, see ``kernel.unsupported_kinds``), a module in ``torch_butterfly.py`` and a branch in
``torch_ops.apply_steps_torch``, and a row in ``docs/file-format.md``. ``tests/test_step_kinds.py``
runs every registered kind through every format and path, so a missing piece fails there.

numpy only: the closed-form solvers import this (through :mod:`bfly_cli.factors`) without torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .errors import FormatError
from .layout import log2_exact
from .reference import butterfly_multiply, rank2_multiply, rank2_param_count

Shape = Callable[[int], "tuple[int, ...] | None"]


class UnknownStepKind(FormatError, ValueError):
    """A step kind this bfly does not know (a newer file, a typo): never guessed at.

    A :class:`FormatError` (one line, exit 2 in the CLI) and a ``ValueError`` (what the numeric
    helpers raised for it before there was a registry).
    """


@dataclass(frozen=True)
class StepKind:
    """One kind of step. ``shape(n)`` is None for a kind without data; see the module docstring."""

    name: str
    letter: str
    shape: Shape
    indices: bool
    count: Callable[[np.ndarray], int]
    multiply: Callable[[Any, np.ndarray], np.ndarray]
    promote: Callable[[np.dtype, "np.dtype | None"], np.dtype]

    @property
    def has_data(self) -> bool:
        """True when a step of this kind carries a ``data`` array (all but ``real``)."""
        return self.shape(2) is not None

    @property
    def dtype_kinds(self) -> str:
        """numpy ``dtype.kind`` letters its data may have: integers for indices, else float/complex."""
        if not self.has_data:
            return ""
        return "iu" if self.indices else "fc"

    def n_params(self, data: np.ndarray | None) -> int:
        """Free parameters, a complex number counting once (indices are structure: 0)."""
        return 0 if data is None else int(self.count(data))

    def n_real_params(self, data: np.ndarray | None) -> int:
        """:meth:`n_params` in real numbers: a complex number counts twice."""
        complex_ = data is not None and np.iscomplexobj(data)
        return self.n_params(data) * (2 if complex_ else 1)

    def result_dtype(self, x_dtype: Any, data_dtype: Any = None) -> np.dtype:
        """The dtype :attr:`multiply` returns for input of ``x_dtype`` (found without computing)."""
        return np.dtype(self.promote(np.dtype(x_dtype), None if data_dtype is None else np.dtype(data_dtype)))


# ---- the per-kind pieces -----------------------------------------------------------------------


def _vector(n: int) -> tuple[int, ...]:
    return (n,)


def _butterfly_shape(n: int) -> tuple[int, ...]:
    return (log2_exact(n), n // 2, 2, 2)


def _rank2_shape(n: int) -> tuple[int, ...]:
    return (log2_exact(n), n // 2, 2, 2, 2, 2)


def _no_data(n: int) -> None:
    return None


def _no_params(data: np.ndarray) -> int:
    return 0


def _every_entry(data: np.ndarray) -> int:
    return int(data.size)


def _rank2_params(data: np.ndarray) -> int:
    return rank2_param_count(data.shape[0], 2 * data.shape[1])


def _gather(data: np.ndarray, x: np.ndarray) -> np.ndarray:
    return x[..., data]


def _butterfly(data: np.ndarray, x: np.ndarray) -> np.ndarray:
    return butterfly_multiply(data, x)


def _scale(data: np.ndarray, x: np.ndarray) -> np.ndarray:
    return x * data


def _real_part(data: None, x: np.ndarray) -> np.ndarray:
    return np.real(x).copy()


def _rank2(data: np.ndarray, x: np.ndarray) -> np.ndarray:
    return rank2_multiply(data, x)


def _keep(x_dtype: np.dtype, data_dtype: np.dtype | None) -> np.dtype:
    """A gather moves values: the input dtype stays."""
    return x_dtype


def _numpy_promotion(x_dtype: np.dtype, data_dtype: np.dtype | None) -> np.dtype:
    """Products with the data promote like numpy (float32 data on float64 input: float64)."""
    return np.result_type(x_dtype, data_dtype)


def _real_dtype(x_dtype: np.dtype, data_dtype: np.dtype | None) -> np.dtype:
    """``Re(.)`` drops to the real dtype of the same precision (integers stay as they are)."""
    return np.real(np.empty(0, x_dtype)).dtype


# Columns: name, structure letter, data shape for N, data are indices, parameter count,
# reference multiply, dtype promotion. The order is the order kinds are listed in messages.
KINDS: dict[str, StepKind] = {kind.name: kind for kind in (
    StepKind("permutation", "P", _vector, True, _no_params, _gather, _keep),
    StepKind("butterfly", "B", _butterfly_shape, False, _every_entry, _butterfly, _numpy_promotion),
    StepKind("diagonal", "D", _vector, False, _every_entry, _scale, _numpy_promotion),
    StepKind("real", "R", _no_data, False, _no_params, _real_part, _real_dtype),
    StepKind("rank2", "Q", _rank2_shape, False, _rank2_params, _rank2, _numpy_promotion),
)}

STEP_KINDS: tuple[str, ...] = tuple(KINDS)


def kind_of(name: Any) -> StepKind:
    """The registered kind called ``name``; :class:`UnknownStepKind` naming the known ones otherwise."""
    try:
        return KINDS[name]
    except (KeyError, TypeError):
        raise UnknownStepKind(f"unknown step kind {name!r}; known: {', '.join(STEP_KINDS)}") from None


def letter(name: str) -> str:
    """The structure letter of kind ``name`` (``"B"`` for ``butterfly``)."""
    return kind_of(name).letter


def check_step(kind: StepKind, n: int, data: Any, where: str) -> None:
    """Shape, dtype and values of one step's data for size ``n``; :class:`FormatError` naming ``where``."""
    if not kind.has_data:
        if data is not None:
            raise FormatError(f"{where} must not carry data")
        return
    if not isinstance(data, np.ndarray):
        raise FormatError(f"{where} has no data array")
    expected = kind.shape(n)
    if data.shape != expected:
        raise FormatError(f"{where} has shape {data.shape}, expected {expected}")
    if kind.indices:
        _check_indices(data, n, where)
    else:
        _check_numbers(data, where)


def _check_indices(data: np.ndarray, n: int, where: str) -> None:
    if data.dtype.kind not in "iu":
        raise FormatError(f"{where} must hold integers, not {data.dtype}")
    if not np.array_equal(np.sort(data), np.arange(n)):
        raise FormatError(f"{where} is not a permutation of 0..{n - 1}")


def _check_numbers(data: np.ndarray, where: str) -> None:
    if data.dtype.kind not in "fc":
        raise FormatError(f"{where} must hold floating-point numbers, not {data.dtype}")
    if not np.all(np.isfinite(data)):
        raise FormatError(f"{where} holds NaN or Inf values")


def placeholder(name: str, n: int, dtype: Any = None) -> np.ndarray | None:
    """Data of the right shape and dtype for kind ``name`` at size ``n`` (identity indices, ones),
    for containers that rebuild a structure before loading the values into it (the pt export)."""
    kind = kind_of(name)
    shape = kind.shape(n)
    if shape is None:
        return None
    if kind.indices:
        return np.arange(n, dtype=dtype)
    return np.ones(shape, dtype=dtype)
