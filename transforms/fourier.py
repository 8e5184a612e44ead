"""Unitary discrete Fourier transform and its inverse: T[k, n] = exp(-+2 pi i k n / N) / sqrt(N)."""

from __future__ import annotations

import numpy as np

from . import register


def _phase_table(n: int, sign: int) -> np.ndarray:
    # k*n mod N keeps the angle small, so every entry is accurate to the last bit.
    kn = np.outer(np.arange(n), np.arange(n)) % n
    return np.exp(sign * 2j * np.pi * kn / n) / np.sqrt(n)


@register("dft", "unitary DFT, exp(-2 pi i k n / N) / sqrt(N)")
def dft(n: int) -> np.ndarray:
    """The paper's DFT target (unitary, forward sign)."""
    return _phase_table(n, -1)


@register("idft", "unitary inverse DFT, exp(+2 pi i k n / N) / sqrt(N)")
def idft(n: int) -> np.ndarray:
    """The conjugate (inverse) of :func:`dft`."""
    return _phase_table(n, +1)
