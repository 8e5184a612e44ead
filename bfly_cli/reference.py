"""The numpy reference multiplies of the step kinds that carry stages (``butterfly``, ``rank2``).

These are the ground truth: the compiled kernel, the torch twins in :mod:`bfly_cli.torch_ops` and
the h5py-only reader of ``docs/file-format.md`` are all tested against them. They are written for
clarity first (one reshape per stage, no index arrays); the layout is described in
:mod:`bfly_cli.layout`. :mod:`bfly_cli.step_kinds` registers them with their kinds, and
:mod:`bfly_cli.factors` re-exports them under their historical names.
"""

from __future__ import annotations

import numpy as np


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
