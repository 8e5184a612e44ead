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
    """Read a 1-D filter of length ``n`` from a ``.npy`` file, with clear errors.

    The file is untrusted: it must be a regular file, and its header (shape, dtype) is checked
    before the data are read (bfly_cli.input_files; numpy's advice to unpickle never shows).
    """
    from bfly_cli.errors import BflyError
    from bfly_cli.input_files import check_input_file, read_npy

    try:
        path = check_input_file(path, "filter file", "give a 1-D .npy array of length N")
        with open(path, "rb") as handle:
            c = read_npy(handle, f"filter {str(path)!r}", lambda shape, dtype: _check_filter(shape, dtype, n, path))
    except BflyError as exc:
        raise TransformOptionError(str(exc)) from None
    except OSError as exc:
        raise TransformOptionError(f"cannot read filter {str(path)!r}: {exc.strerror or exc}") from None
    if not np.all(np.isfinite(c)):
        raise TransformOptionError(f"filter {str(path)!r} must hold finite numbers")
    return c.astype(np.complex128 if c.dtype.kind == "c" else np.float64)


def _check_filter(shape: tuple, dtype: np.dtype, n: int, path: Path) -> None:
    """A filter's declared shape and dtype, before its data are read."""
    if len(shape) != 1 or shape[0] != n:
        raise TransformOptionError(f"filter {str(path)!r} has shape {shape}; expected a 1-D array of length {n}")
    if dtype.kind not in "biufc":
        raise TransformOptionError(f"filter {str(path)!r} must hold finite numbers, not {dtype}")


@register("convolution", "circulant of a random filter (--seed, default 0) or --filter FILE.npy", options=("seed", "filter"))
def convolution(n: int, seed: int = 0, filter: str | None = None) -> np.ndarray:
    """Circulant matrix; its first column is the filter divided by sqrt(N)."""
    c = load_filter(filter, n) if filter is not None else np.random.default_rng(seed).standard_normal(n)
    return scipy.linalg.circulant(c) / np.sqrt(n)
