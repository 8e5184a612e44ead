"""Index bookkeeping of the one twiddle layout: pair positions, bit reversal, stage reversal, and
the hard form of the paper's permutation choices.

numpy only, size-only work. The layout (see :mod:`bfly_cli.factors`): stage ``l`` of a butterfly
has stride ``s = 2**l``; its pair ``i`` in ``[0, N/2)`` has ``low = i % s`` and first position
``pos = 2*(i - low) + low`` and mixes ``x[pos]`` with ``x[pos + s]``. Stages run stride 1 first
("increasing stride").

A butterfly whose stages run in *decreasing* stride (stride N/2 first: inverses, the paper's
decimation-in-frequency model) is not of that form, but it is one conjugated by the bit reversal
``R``: a stage of stride ``2**l`` pairs positions that differ only in bit ``l``; relabelled by
their bit-reversed index they differ only in bit ``L-1-l``, and the position with bit ``l`` clear
maps to the one with bit ``L-1-l`` clear, so every 2x2 block keeps its orientation. Hence
``B_dec = R B_inc R`` with stage ``L-1-l`` of ``B_inc`` made of the blocks of stage ``l`` of
``B_dec``, moved to new pair indices: :func:`reverse_stages` does that move, for numpy arrays and
(by duck typing, without importing torch) for torch tensors.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np


def log2_exact(n: int) -> int:
    """log2 of a power of two, or -1 when ``n`` is not one."""
    return n.bit_length() - 1 if n >= 1 and n & (n - 1) == 0 else -1


def pair_positions(n: int, level: int) -> np.ndarray:
    """First position ``pos`` of every pair ``i`` of the stage with stride ``2**level``."""
    s = 1 << level
    i = np.arange(n // 2)
    low = i % s
    return 2 * (i - low) + low


def pair_index(level: int, pos: np.ndarray) -> np.ndarray:
    """Inverse of :func:`pair_positions`: the pair index whose first position is ``pos``."""
    s = 1 << level
    low = pos % s
    return (pos - low) // 2 + low


def bit_reversal(n: int) -> np.ndarray:
    """The bit-reversal permutation of ``range(n)`` (an involution, so ``R = R^T = R^-1``).

    It maps a decreasing-stride butterfly onto an increasing-stride one (``R B R``), which is how
    inverses and the paper's decreasing-stride model are stored with the single layout.
    """
    levels = n.bit_length() - 1
    idx = np.arange(n)
    rev = np.zeros(n, dtype=np.int64)
    for bit in range(levels):
        rev |= ((idx >> bit) & 1) << (levels - 1 - bit)
    return rev


@functools.lru_cache(maxsize=64)
def reversed_pairs(n: int) -> np.ndarray:
    """``map[l, i]``: where pair ``i`` of stage ``l`` lands in stage ``L-1-l`` after conjugation by ``R``.

    Cached because the gradient learner converts its decreasing-stride model at every restart.
    """
    levels = _levels(n)
    rev = bit_reversal(n)
    return np.stack([pair_index(levels - 1 - lev, rev[pair_positions(n, lev)]) for lev in range(levels)])


def _copy(array: Any) -> Any:
    """A copy of a numpy array or a torch tensor (``clone``), without importing torch here."""
    return array.clone() if hasattr(array, "clone") else array.copy()


def reverse_stages(twiddle: Any) -> Any:
    """Twiddles of ``B_inc`` with ``B_dec = R B_inc R``, for ``twiddle`` applied in decreasing stride.

    ``twiddle[..., l, i]`` is the 2x2 block of pair ``i`` of the stride-``2**l`` stage of
    ``B_dec`` (which applies stage ``L-1`` first). The result is an ordinary increasing-stride
    twiddle array of the same shape and type (numpy array or torch tensor); see the module docs.
    """
    levels, half = twiddle.shape[-4], twiddle.shape[-3]
    mapping = reversed_pairs(2 * half)
    out = _copy(twiddle)
    for lev in range(levels):
        out[..., levels - 1 - lev, mapping[lev], :, :] = twiddle[..., lev, :, :, :]
    return out


def unreverse_stages(twiddle: Any) -> Any:
    """Inverse of :func:`reverse_stages`: the decreasing-stride twiddles of ``R B_inc R``."""
    levels, half = twiddle.shape[-4], twiddle.shape[-3]
    mapping = reversed_pairs(2 * half)
    out = _copy(twiddle)
    for lev in range(levels):
        out[..., lev, :, :, :] = twiddle[..., levels - 1 - lev, mapping[lev], :, :]
    return out


# ---- the paper's permutation choices (hard form; the relaxation lives in torch_butterfly) --------


def _levels(n: int) -> int:
    """log2(n), with a message naming the value when n is not a power of two >= 2."""
    levels = log2_exact(n)
    if levels < 1:
        raise ValueError(f"n = {n} is not a power of two >= 2")
    return levels


@functools.lru_cache(maxsize=64)
def _level_indices(n: int, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Gather indices, inside every block of size ``block``: evens-then-odds, and halves reversed."""
    base = np.arange(n).reshape(n // block, block)
    separate = np.concatenate([base[:, 0::2], base[:, 1::2]], axis=1).reshape(-1)
    half = block // 2
    reverse = np.concatenate([base[:, :half][:, ::-1], base[:, half:][:, ::-1]], axis=1).reshape(-1)
    return separate, reverse


def permutation_blocks(n: int) -> list[int]:
    """Block sizes of the paper's permutation levels, in application order: N, N/2, ..., 4."""
    return [n >> j for j in range(_levels(n) - 1)]


def permutation_from_choices(n: int, choices: np.ndarray) -> np.ndarray:
    """The hard permutation (``x <- x[perm]``) for 0/1 ``choices`` of shape ``(L-1, 3)``.

    Per block size ``k`` (N, N/2, ..., 4, inside every block of that size): (0) separate evens
    from odds, (1) reverse the first half, (2) reverse the second half. numpy only, so the
    numpy-side search over choices need not import the torch modules.
    """
    choices = np.asarray(choices, dtype=bool).reshape(-1, 3)
    perm = np.arange(n)
    for block, (sep, rev_first, rev_second) in zip(permutation_blocks(n), choices):
        separate, reverse = _level_indices(n, block)
        if sep:
            perm = perm[separate]
        flip = np.zeros(n, dtype=bool)
        half = block // 2
        flip.reshape(n // block, block)[:, :half] = rev_first
        flip.reshape(n // block, block)[:, half:] = rev_second
        perm = np.where(flip, perm[reverse], perm)
    return perm


def compose_permutations(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """One permutation equal to ``x <- x[first]`` followed by ``x <- x[second]``."""
    return np.asarray(first)[np.asarray(second)]
