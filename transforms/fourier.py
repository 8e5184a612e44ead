"""The DFT and its inverse: T[k, n] = exp(-+2 pi i k n / N) times the scale ``--norm`` names.

``norm`` has scipy.fft's meaning: the matrix's columns are ``scipy.fft.fft(eye(N), norm=norm,
axis=0)`` (``ifft`` for ``idft``). ``backward`` leaves the forward transform unscaled and divides
the inverse by N, ``forward`` the other way round, ``ortho`` divides both by sqrt(N) (unitary).
The default is ``ortho`` because the seed paper's DFT is unitary; ``paper`` names that same scaling.
"""

from __future__ import annotations

import numpy as np

from . import NORMS, Choice, register

_NORM = Choice(NORMS, "ortho", "unitary, as the paper's DFT")


def _scale(n: int, norm: str, inverse: bool) -> float:
    """scipy.fft's factor: 1/N on the direction ``norm`` names, 1/sqrt(N) on both for ortho."""
    if norm in ("ortho", "paper"):
        return 1 / np.sqrt(n)
    scaled_direction_is_inverse = norm == "backward"
    return 1 / n if scaled_direction_is_inverse == inverse else 1.0


def _phase_table(n: int, sign: int, scale: float) -> np.ndarray:
    # k*n mod N keeps the angle small, so every entry is accurate to the last bit.
    kn = np.outer(np.arange(n), np.arange(n)) % n
    return np.exp(sign * 2j * np.pi * kn / n) * scale


@register("dft", "DFT, exp(-2 pi i k n / N) / sqrt(N) by default", choices={"norm": _NORM})
def dft(n: int, *, norm: str) -> np.ndarray:
    """The DFT matrix with scipy.fft.fft's scaling ``norm`` (the paper's target: ``ortho``)."""
    return _phase_table(n, -1, _scale(n, norm, inverse=False))


@register("idft", "inverse DFT, exp(+2 pi i k n / N) / sqrt(N) by default", choices={"norm": _NORM})
def idft(n: int, *, norm: str) -> np.ndarray:
    """The inverse DFT matrix with scipy.fft.ifft's scaling ``norm``."""
    return _phase_table(n, +1, _scale(n, norm, inverse=True))
