"""Legendre polynomials at N equispaced interior points: T[i, j] = P_i(x_j) / sqrt(N).

``x_j = linspace(-1, 1, N + 2)[1:-1]``, i = 0 .. N-1, as in the seed paper. The three-term
recurrence is evaluated in float64 (entries stay bounded by 1 on [-1, 1]).
"""

from __future__ import annotations

import numpy as np

from . import register


@register("legendre", "Legendre polynomials P_i at interior equispaced points / sqrt(N)")
def legendre(n: int) -> np.ndarray:
    """Rows are polynomial degrees, columns are points."""
    x = np.linspace(-1.0, 1.0, n + 2)[1:-1]
    out = np.empty((n, n))
    out[0] = 1.0
    if n > 1:
        out[1] = x
    for k in range(1, n - 1):
        out[k + 1] = ((2 * k + 1) * x * out[k] - k * out[k - 1]) / (k + 1)
    return out / np.sqrt(n)
