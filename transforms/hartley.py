"""Discrete Hartley transform / sqrt(N): (cos + sin)(2 pi k n / N) / sqrt(N)."""

from __future__ import annotations

import numpy as np

from . import register


@register("hartley", "discrete Hartley, cas(2 pi k n / N) / sqrt(N)")
def hartley(n: int) -> np.ndarray:
    """cas(x) = cos(x) + sin(x), with k*n reduced mod N for accurate angles."""
    angle = 2 * np.pi * (np.outer(np.arange(n), np.arange(n)) % n) / n
    return (np.cos(angle) + np.sin(angle)) / np.sqrt(n)
