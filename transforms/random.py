"""Gaussian random matrix / sqrt(N): the incompressible control target."""

from __future__ import annotations

import numpy as np

from . import register


@register("randn", "Gaussian random matrix / sqrt(N) (--seed, default 0)", options=("seed",))
def randn(n: int, seed: int = 0) -> np.ndarray:
    """``default_rng(seed).standard_normal((N, N)) / sqrt(N)``."""
    return np.random.default_rng(seed).standard_normal((n, n)) / np.sqrt(n)
