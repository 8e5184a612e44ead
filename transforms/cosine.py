"""DCT-II and DST-II as the seed paper defines them, or orthonormal with ``norm='ortho'``.

Paper scaling (``norm=None``): ``T[k, n] = 2 cos(pi k (2n+1) / 2N) / sqrt(N)``, which equals
``scipy.fft.dct(eye(N), norm=None, axis=0) / sqrt(N)`` and is *not* orthonormal. DST-II likewise
with ``2 sin(pi (k+1)(2n+1) / 2N)``. ``norm='ortho'`` gives scipy's orthonormal matrices.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

from . import TransformOptionError, register

_NORMS = (None, "paper", "ortho")


def _check_norm(norm: str | None) -> str | None:
    if norm not in _NORMS:
        raise TransformOptionError(f"unknown norm {norm!r}; use 'ortho' or leave it out for the paper's scaling")
    return None if norm == "paper" else norm


def _type2_matrix(transform, n: int, norm: str | None) -> np.ndarray:
    """Columns are ``transform`` (scipy's dct or dst, type II) of the unit vectors."""
    norm = _check_norm(norm)
    eye = np.eye(n)
    if norm == "ortho":
        return transform(eye, type=2, norm="ortho", axis=0)
    return transform(eye, type=2, axis=0) / np.sqrt(n)


@register("dct", "DCT-II, 2 cos(pi k (2n+1) / 2N) / sqrt(N) (or --norm ortho)", options=("norm",))
def dct(n: int, norm: str | None = None) -> np.ndarray:
    """DCT-II matrix; see the module docstring for the two scalings."""
    return _type2_matrix(scipy.fft.dct, n, norm)


@register("dst", "DST-II, 2 sin(pi (k+1)(2n+1) / 2N) / sqrt(N) (or --norm ortho)", options=("norm",))
def dst(n: int, norm: str | None = None) -> np.ndarray:
    """DST-II matrix; see the module docstring for the two scalings."""
    return _type2_matrix(scipy.fft.dst, n, norm)
