"""Applying factors with torch: the autograd- and CUDA-capable path (twin of ``Factors.apply_reference``).

Same twiddle layout and stage loop as :func:`bfly_cli.reference.butterfly_multiply`, written with
torch ops so it runs on any device and differentiates through the twiddles. This is the one torch
stage loop: :mod:`bfly_cli.torch_butterfly`'s modules call it too. Import torch lazily: this module
is only imported by code that needs torch.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from .factors import Factors
from .step_kinds import kind_of

_TORCH_DTYPES = {
    np.dtype(np.float32): torch.float32,
    np.dtype(np.float64): torch.float64,
    np.dtype(np.complex64): torch.complex64,
    np.dtype(np.complex128): torch.complex128,
}


def stage_multiply_torch(twiddle_level: torch.Tensor, x: torch.Tensor, level: int) -> torch.Tensor:
    """One butterfly stage (stride ``2**level``) along the last axis; the pairing of ``reference``."""
    n = x.shape[-1]
    s = 1 << level
    batch = x.shape[:-1]
    v = x.reshape(*batch, n // (2 * s), 2, s)
    t = twiddle_level.reshape(n // (2 * s), s, 2, 2)
    x0, x1 = v[..., 0, :], v[..., 1, :]
    y0 = t[..., 0, 0] * x0 + t[..., 0, 1] * x1
    y1 = t[..., 1, 0] * x0 + t[..., 1, 1] * x1
    return torch.stack([y0, y1], dim=-2).reshape(*batch, n)


def butterfly_multiply_torch(twiddle: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Apply twiddles ``(L, N/2, 2, 2)`` along the last axis of ``x`` (stride 1 first)."""
    for lev in range(twiddle.shape[0]):
        x = stage_multiply_torch(twiddle[lev], x, lev)
    return x


def rank2_multiply_torch(stages: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Twin of :func:`bfly_cli.reference.rank2_multiply`: 2-slot state, stride 1 first, slot 0 out."""
    state = torch.stack([x, torch.zeros_like(x)], dim=-1)
    for lev in range(stages.shape[0]):
        state = rank2_stage_torch(stages[lev], state, lev)
    return state[..., 0]


def rank2_stage_torch(stage: torch.Tensor, state: torch.Tensor, lev: int) -> torch.Tensor:
    """One ``rank2`` stage (stride ``2**lev``) on 2-slot states ``(..., N, 2)``."""
    batch, n = state.shape[:-2], state.shape[-2]
    s = 1 << lev
    v = state.reshape(*batch, n // (2 * s), 2, s, 2)
    t = stage.reshape(n // (2 * s), s, 2, 2, 2, 2).to(v.dtype)
    return torch.einsum("bsoprq,...brsq->...bosp", t, v).reshape(*batch, n, 2)


def factors_to_torch(factors: Factors, device: str | torch.device = "cpu") -> list[tuple[str, torch.Tensor | None]]:
    """The steps as ``(kind, tensor)`` pairs on ``device`` (permutations as int64 index tensors)."""
    steps = []
    for step in factors.steps:
        data = None if step.data is None else torch.as_tensor(np.ascontiguousarray(step.data), device=device)
        steps.append((step.kind, data))
    return steps


def _gather(data: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return x[..., data]


def _butterfly(data: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    if data.is_complex() and not x.is_complex():
        x = x.to(data.dtype)
    return butterfly_multiply_torch(data, x)


def _scale(data: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return x * data


def _real_part(data: None, x: torch.Tensor) -> torch.Tensor:
    return x.real if x.is_complex() else x


def _rank2(data: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return rank2_multiply_torch(data, x.to(data.dtype) if not x.is_complex() else x)


# The torch multiply of every registered step kind (bfly_cli.step_kinds); a kind missing here raises.
TORCH_MULTIPLIES: dict[str, Callable[[torch.Tensor | None, torch.Tensor], torch.Tensor]] = {
    "permutation": _gather, "butterfly": _butterfly, "diagonal": _scale, "real": _real_part, "rank2": _rank2,
}


def apply_steps_torch(steps: list[tuple[str, torch.Tensor | None]], x: torch.Tensor) -> torch.Tensor:
    """``y = M x`` along the last axis, for steps from :func:`factors_to_torch`. Complex input
    through a chain with a ``real`` step runs as its real and imaginary parts, as
    :meth:`bfly_cli.factors.Factors.apply` does (``Re(C x)`` is not ``Re(C) x``)."""
    if x.is_complex() and any(kind == "real" for kind, _ in steps):
        re, im = (apply_steps_torch(steps, part.contiguous()) for part in (x.real, x.imag))
        return torch.complex(re, im) if not re.is_complex() else re + 1j * im
    for kind, data in steps:
        multiply = TORCH_MULTIPLIES.get(kind_of(kind).name)
        if multiply is None:
            raise ValueError(f"step kind {kind!r} has no torch multiply yet")
        x = multiply(data, x)
    return x


def torch_dtype(dtype: np.dtype) -> torch.dtype:
    """The torch dtype matching a numpy float/complex dtype."""
    return _TORCH_DTYPES[np.dtype(dtype)]


def numpy_dtype(dtype: torch.dtype) -> np.dtype:
    """The numpy dtype matching a torch float/complex dtype (float32/64, complex64/128);
    ``ValueError`` naming the four for any other (factors compute in these only)."""
    for np_dtype, t_dtype in _TORCH_DTYPES.items():
        if t_dtype == dtype:
            return np_dtype
    raise ValueError(f"dtype {dtype} is not one bfly factors compute in; use torch.float32, torch.float64, "
                     f"torch.complex64 or torch.complex128")
