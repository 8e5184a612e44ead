"""The target zoo: named N x N matrices exactly as the seed paper defines them.

Imported as ``bfly_cli.transforms`` (this folder is installed inside the package).

Each family lives in its own module and registers a :class:`Transform` here. An option with a
fixed set of values declares it as a :class:`Choice` (values, default, why that default): the
registry checks it, so every builder gets a canonical value and ``bfly list`` shows the same facts.
``--norm`` follows ``scipy.fft``'s ``norm=`` (``backward``, ``ortho``, ``forward``); ``paper`` is the
seed paper's scaling (scipy's unnormalized transform / sqrt(N)). Builders return a
float64 or complex128 array; they import numpy and scipy only. Use :func:`build` to make a matrix
and :func:`names` / :func:`get` to look transforms up (an unknown name suggests the closest one).

``dft``, ``idft``  (inverse) DFT; --norm ortho (unitary, default), backward, forward, paper  (fourier.py)
``dct``, ``dst``   DCT / DST, --type 2 (default), 3, 4; --norm paper (default), backward,
                   ortho, forward                                                         (cosine.py)
``hadamard``       Sylvester Hadamard / sqrt(N)                (hadamard.py)
``hartley``        discrete Hartley transform / sqrt(N)        (hartley.py)
``convolution``    circulant of a random (or given) filter     (convolution.py)
``legendre``       Legendre polynomials at interior points     (legendre.py)
``randn``          Gaussian random matrix / sqrt(N)            (random.py)
"""

from __future__ import annotations

import difflib
import numbers
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np


class UnknownTransform(ValueError):
    """Raised for a name that is not registered; the message suggests the closest name."""


class TransformOptionError(ValueError):
    """Raised for an option a transform does not take or a bad option value."""


@dataclass(frozen=True)
class Choice:
    """The values an option accepts, its default and why that default.

    Declared once so the error for a bad value, ``bfly list`` and the value recorded in a factor
    file (which ``bfly verify`` rebuilds from) cannot disagree.
    """

    values: tuple[Any, ...]
    default: Any
    why: str

    def pick(self, transform: str, option: str, value: Any) -> Any:
        """The declared value ``value`` stands for: ``3``, ``"3"`` and ``np.int64(3)`` all give ``3``
        (a value read back from JSON or typed in Python then rebuilds the same matrix)."""
        for accepted in self.values:
            if str(accepted) == str(value):
                return accepted
        listed = ", ".join(str(v) for v in self.values)
        raise TransformOptionError(
            f"{transform} does not take --{option} {value!r}; use one of {listed} (default {self.default})")


@dataclass(frozen=True)
class Transform:
    """A registered target: ``build(n, **options)`` returns the dense matrix."""

    name: str
    description: str
    build_fn: Callable[..., np.ndarray]
    options: tuple[str, ...] = ()
    choices: Mapping[str, Choice] = field(default_factory=dict)

    def check(self, **options: Any) -> dict[str, Any]:
        """The options that were set (not None), checked, with each choice's canonical value."""
        given = {k: v for k, v in options.items() if v is not None}
        extra = sorted(set(given) - set(self.options))
        if extra:
            takes = ", ".join("--" + o for o in self.options) or "no options"
            flags = ", ".join("--" + o for o in extra)
            raise TransformOptionError(f"transform {self.name!r} does not take {flags}; it takes {takes}")
        for k, v in given.items():
            if k not in self.choices and not isinstance(v, OPTION_TYPES.get(k, object)) or isinstance(v, bool):
                raise TransformOptionError(f"{self.name} option --{k} must be {OPTION_WORDS.get(k, 'a value')}, not {v!r}")
        return {k: self.choices[k].pick(self.name, k, v) if k in self.choices else v for k, v in given.items()}

    def build(self, n: int, **options: Any) -> np.ndarray:
        """Build the n x n matrix from the options that were set; a choice left out gets its default."""
        defaults = {k: c.default for k, c in self.choices.items()}
        return self.build_fn(n, **{**defaults, **self.check(**options)})


# Free-valued options' types (a factor file's recorded options are untrusted input to build).
OPTION_TYPES: dict[str, Any] = {"seed": numbers.Integral, "filter": (str, os.PathLike)}
OPTION_WORDS = {"seed": "an integer", "filter": "a file path"}

# scipy.fft's norm= values, then the seed paper's scaling by name (fourier.py and cosine.py).
NORMS = ("backward", "ortho", "forward", "paper")

_REGISTRY: dict[str, Transform] = {}


def register(name: str, description: str, options: tuple[str, ...] = (),
             choices: Mapping[str, Choice] | None = None) -> Callable:
    """Decorator adding a builder to the registry under ``name``; ``choices`` name options too."""
    choices = dict(choices or {})
    options = tuple(options) + tuple(k for k in choices if k not in options)

    def wrap(fn: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
        _REGISTRY[name] = Transform(name, description, fn, options, choices)
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

__all__ = ["NORMS", "Choice", "Transform", "UnknownTransform", "TransformOptionError", "build", "get", "names", "register"]
