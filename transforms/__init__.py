"""The target zoo: named N x N matrices exactly as the seed paper defines them.

Each family lives in its own module and registers a :class:`Transform` here. Builders return a
float64 or complex128 array; they import numpy and scipy only. Use :func:`build` to make a matrix
and :func:`names` / :func:`get` to look transforms up (an unknown name suggests the closest one).

``dft``, ``idft``  unitary (inverse) DFT                       (fourier.py)
``dct``, ``dst``   DCT-II / DST-II, paper scaling or ortho     (cosine.py)
``hadamard``       Sylvester Hadamard / sqrt(N)                (hadamard.py)
``hartley``        discrete Hartley transform / sqrt(N)        (hartley.py)
``convolution``    circulant of a random (or given) filter     (convolution.py)
``legendre``       Legendre polynomials at interior points     (legendre.py)
``randn``          Gaussian random matrix / sqrt(N)            (random.py)
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np


class UnknownTransform(ValueError):
    """Raised for a name that is not registered; the message suggests the closest name."""


class TransformOptionError(ValueError):
    """Raised for an option a transform does not take or a bad option value."""


@dataclass(frozen=True)
class Transform:
    """A registered target: ``build(n, **options)`` returns the dense matrix."""

    name: str
    description: str
    build_fn: Callable[..., np.ndarray]
    options: tuple[str, ...] = ()

    def build(self, n: int, **options: Any) -> np.ndarray:
        """Build the n x n matrix, passing only the options that were set (not None)."""
        given = {k: v for k, v in options.items() if v is not None}
        extra = sorted(set(given) - set(self.options))
        if extra:
            takes = ", ".join(self.options) or "no options"
            raise TransformOptionError(f"transform {self.name!r} does not take {', '.join(extra)} (it takes {takes})")
        return self.build_fn(n, **given)


_REGISTRY: dict[str, Transform] = {}


def register(name: str, description: str, options: tuple[str, ...] = ()) -> Callable:
    """Decorator adding a builder to the registry under ``name``."""

    def wrap(fn: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
        _REGISTRY[name] = Transform(name, description, fn, options)
        return fn

    return wrap


def names() -> list[str]:
    """Registered names, in registry order."""
    return list(_REGISTRY)


def get(name: str) -> Transform:
    """The transform called ``name``; :class:`UnknownTransform` suggests the closest match."""
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, _REGISTRY, n=1, cutoff=0.4)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UnknownTransform(
            f"unknown transform {name!r}; {hint}known: {', '.join(_REGISTRY)} (or a .npy/.npz/.h5 file path)"
        ) from None


def build(name: str, n: int, **options: Any) -> np.ndarray:
    """Build transform ``name`` at size ``n`` (see each module for the exact definition)."""
    return get(name).build(n, **options)


# Registration happens on import of each family module.
from . import fourier, cosine, hadamard, hartley, convolution, legendre, random  # noqa: E402,F401

__all__ = ["Transform", "UnknownTransform", "TransformOptionError", "build", "get", "names", "register"]
