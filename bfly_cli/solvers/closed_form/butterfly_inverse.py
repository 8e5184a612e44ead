"""Inverting a butterfly without leaving the project's step kinds.

``B = F_{L-1} ... F_0`` (stride 1 first) has the inverse ``F_0^-1 ... F_{L-1}^-1``: every stage
inverts on its own (its 2x2 blocks are disjoint), but the stages now run in *decreasing* stride,
which the canonical ``butterfly`` step cannot express directly.

Bit reversal ``R`` fixes the order. A stage of stride ``2^l`` pairs positions that differ only in
bit ``l``; after relabelling every position by its bit-reversed index they differ only in bit
``L-1-l``, i.e. ``R F R`` is a stage of stride ``2^(L-1-l)``. The position with bit ``l`` clear maps
to the one with bit ``L-1-l`` clear, so each 2x2 block keeps its orientation. Hence::

    B^-1 = R B' R,    B' increasing-stride with stage L-1-l made of the inverted blocks of stage l

and ``B^H = R B'' R`` the same way with conjugate-transposed blocks. This is exact (an index
relabelling plus 2x2 inversions): no dense inverse and no rounding beyond the 2x2 solves.
"""

from __future__ import annotations

import numpy as np

from ...chain_algebra import invert_blocks
from ...layout import bit_reversal, reverse_stages
from ...reference import butterfly_multiply


def inverse_twiddles(twiddle: np.ndarray) -> tuple[np.ndarray, float]:
    """Increasing-stride twiddles ``B'`` with ``B^-1 = R B' R``, and the block conditioning ratio."""
    inv, ratio = invert_blocks(twiddle)
    return reverse_stages(inv), ratio


def apply_inverse(twiddle_inv: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``B^-1 x`` along the last axis, given ``twiddle_inv`` from :func:`inverse_twiddles`.

    Runs ``R B' R`` through the compiled kernel (the numpy reference when it is not built): the
    two-butterfly route applies this to all N columns of its matrix, an O(N^2 log N) product.
    """
    from ... import kernel
    from ...factors import Factors, Step

    n = 2 * twiddle_inv.shape[1]
    rev = bit_reversal(n)
    if not kernel.available():
        return butterfly_multiply(twiddle_inv, x[..., rev])[..., rev]
    chain = Factors(n, [Step("permutation", rev), Step("butterfly", twiddle_inv), Step("permutation", rev)])
    return kernel.apply(chain, x)
