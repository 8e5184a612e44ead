"""Circular convolution with a length-N filter: T[i, j] = c[(i - j) mod N] / sqrt(N).

The filter is ``numpy.random.default_rng(seed).standard_normal(N)`` (seed 0 by default) or a
user's 1-D ``.npy`` file of length N (``filter_path``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.linalg

from . import TransformOptionError, register


def load_filter(path: str | Path, n: int) -> np.ndarray:
    """Read a 1-D filter of length ``n`` from a ``.npy`` file, with clear errors."""
    path = Path(path)
    if not path.is_file():
        raise TransformOptionError(f"filter file {str(path)!r} does not exist")
    try:
        c = np.load(path, allow_pickle=False)
    except Exception as exc:  # numpy raises many types for a bad file
        raise TransformOptionError(f"cannot read filter {str(path)!r} as .npy: {exc}") from None
    if c.ndim != 1 or c.shape[0] != n:
        raise TransformOptionError(f"filter {str(path)!r} has shape {c.shape}; expected a 1-D array of length {n}")
    if c.dtype.kind not in "biufc" or not np.all(np.isfinite(c)):
        raise TransformOptionError(f"filter {str(path)!r} must hold finite numbers")
    return c.astype(np.complex128 if c.dtype.kind == "c" else np.float64)


@register("convolution", "circulant of a random filter (--seed, default 0) or --filter FILE.npy", options=("seed", "filter"))
def convolution(n: int, seed: int = 0, filter: str | None = None) -> np.ndarray:
    """Circulant matrix; its first column is the filter divided by sqrt(N)."""
    c = load_filter(filter, n) if filter is not None else np.random.default_rng(seed).standard_normal(n)
    return scipy.linalg.circulant(c) / np.sqrt(n)
