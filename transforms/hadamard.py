"""Sylvester Hadamard matrix / sqrt(N) (orthonormal, entries +-1/sqrt(N))."""

from __future__ import annotations

import numpy as np
import scipy.linalg

from . import register


@register("hadamard", "Sylvester Hadamard / sqrt(N)")
def hadamard(n: int) -> np.ndarray:
    """H[i, j] = (-1)^popcount(i & j) / sqrt(N)."""
    return scipy.linalg.hadamard(n).astype(np.float64) / np.sqrt(n)
