"""DCT and DST of types II, III and IV, with scipy.fft's scalings or the seed paper's.

The matrix's columns are ``scipy.fft.dct(eye(N), type=t, norm=norm, axis=0)`` (``dst`` likewise):
``--type`` and ``--norm backward|ortho|forward`` have scipy's meanings. ``paper`` (the default) is
the seed paper's scaling, scipy's unnormalized transform divided by sqrt(N); for type II that is
``T[k, n] = 2 cos(pi k (2n+1) / 2N) / sqrt(N)`` (DST-II: ``2 sin(pi (k+1)(2n+1) / 2N) / sqrt(N)``),
which is *not* orthonormal. Types III and IV take the same rule (unnormalized / sqrt(N)) so that
``paper`` means one thing for every type. The defaults stay the paper's because its tables and the
README's commands use them.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import scipy.fft

from . import NORMS, Choice, register

_CHOICES = {
    "norm": Choice(NORMS, "paper", "the paper's tables and the README use it"),
    "type": Choice((2, 3, 4), 2, "the paper's DCT/DST"),
}


def _matrix(transform: Callable[..., np.ndarray], n: int, norm: str, kind: int) -> np.ndarray:
    """Columns are ``transform`` (scipy's dct or dst) of the unit vectors."""
    eye = np.eye(n)
    if norm == "paper":
        return transform(eye, type=kind, axis=0) / np.sqrt(n)
    return transform(eye, type=kind, norm=norm, axis=0)


@register("dct", "DCT, type II 2 cos(pi k (2n+1) / 2N) / sqrt(N) by default", choices=_CHOICES)
def dct(n: int, *, norm: str, type: int) -> np.ndarray:  # noqa: A002 (the option is --type)
    """DCT matrix of scipy's ``type`` with scaling ``norm``; see the module docstring."""
    return _matrix(scipy.fft.dct, n, norm, type)


@register("dst", "DST, type II 2 sin(pi (k+1)(2n+1) / 2N) / sqrt(N) by default", choices=_CHOICES)
def dst(n: int, *, norm: str, type: int) -> np.ndarray:  # noqa: A002 (the option is --type)
    """DST matrix of scipy's ``type`` with scaling ``norm``; see the module docstring."""
    return _matrix(scipy.fft.dst, n, norm, type)
