"""Small computations every solver family needs, written once (numpy only, like ``closed_form/``).

* **Block-rank tail energy.** A column order is right for a butterfly (rank 1) or for ``Re`` of a
  complex one / the real rank-2 model (rank 2) when every block of every hierarchical split has
  that rank. :func:`split_level_blocks` cuts an ordered matrix into the blocks of one split level;
  :func:`tail_energy` (exact, batched SVD) and :func:`sketched_tail_energy` (a fixed randomized
  range finder, cheap enough to score thousands of candidate orders) give the energy beyond the
  rank. The analysis report and the gradient learner's order repair read the same blocks.
* **Probe error.** ``||(M - T) X|| / ||T X||`` on a few fixed Gaussian vectors: the relative
  Frobenius error estimated with a handful of products instead of a dense N x N reconstruction.
* **Finishing a result.** A solver works in float64; :func:`cast_steps` stores its steps in the
  caller's precision and :func:`finish_steps` also appends the ``real`` readout for a real target.
"""

from __future__ import annotations

import functools
from typing import Callable, Sequence

import numpy as np

from ..factors import Step

_SKETCH_SEED = 20261127
_SINGLE = (np.dtype(np.float32), np.dtype(np.complex64))


def split_level_blocks(ordered: np.ndarray, level: int) -> np.ndarray:
    """The ``N`` blocks of split ``level`` of ``ordered``: shape ``(N, N >> level, 2**level)``.

    Block ``chunk * 2**level + low`` holds the rows whose low ``level`` bits are ``low`` and the
    columns of the ``chunk``-th aligned run of ``2**level`` positions (the two-factor split of a
    butterfly at that level), rows and columns in their original order.
    """
    n = ordered.shape[0]
    hi, lo = n >> level, 1 << level
    return ordered.reshape(hi, lo, hi, lo).transpose(2, 1, 0, 3).reshape(n, hi, lo)


def tail_energy(ordered: np.ndarray, level: int, rank: int) -> float:
    """Energy (squared singular values summed) beyond ``rank`` in the blocks of split ``level``."""
    sing = np.linalg.svd(split_level_blocks(ordered, level), compute_uv=False)
    return float(np.sum(sing[..., rank:] ** 2))


def sketched_tail_energy(ordered: np.ndarray, level: int, rank: int) -> float:
    """:func:`tail_energy` by a randomized range finder: exact for blocks of rank <= ``rank``.

    A fixed sketch with one power iteration (so the same input always gives the same score)
    gives each block's best rank-``rank`` basis Q; the tail is ``||block||^2 - ||Q^H block||^2``.
    That is exact when a block has rank <= ``rank`` and an upper bound otherwise (tight after the
    power step), at O(size of the matrix * rank) per level instead of a batched SVD.
    """
    n = ordered.shape[0]
    hi, lo = n >> level, 1 << level
    if min(hi, lo) <= rank:
        return 0.0
    blocks = split_level_blocks(ordered, level)
    omega = _sketch(lo, rank).astype(blocks.dtype)
    basis, _ = np.linalg.qr(blocks @ omega)
    basis, _ = np.linalg.qr(blocks @ (blocks.conj().transpose(0, 2, 1) @ basis))
    kept = float(np.sum(np.abs(basis.conj().transpose(0, 2, 1) @ blocks) ** 2))
    return max(float(np.sum(np.abs(blocks) ** 2)) - kept, 0.0)


@functools.lru_cache(maxsize=64)
def _sketch(cols: int, rank: int) -> np.ndarray:
    """A fixed Gaussian test matrix (cached: the search scores thousands of orders)."""
    return np.random.default_rng(_SKETCH_SEED).standard_normal((cols, rank))


def probe_error(apply: Callable[[np.ndarray], np.ndarray], matrix: np.ndarray, probes: int, seed: int) -> float:
    """``||apply(X) - X T^T|| / ||X T^T||`` for ``probes`` fixed Gaussian rows ``X`` (seeded).

    ``apply`` maps a batch of row vectors through the factors (``Factors.apply`` or the compiled
    kernel). An unbiased estimate of the relative Frobenius error; for a zero target the absolute
    difference is returned.
    """
    x = np.random.default_rng(seed).standard_normal((probes, matrix.shape[0]))
    want = x @ matrix.T
    norm = float(np.linalg.norm(want))
    diff = float(np.linalg.norm(apply(x) - want))
    return diff / norm if norm > 0 else diff


def is_single(dtype: np.dtype) -> bool:
    """True for float32 and complex64 (``--dtype float32``)."""
    return np.dtype(dtype) in _SINGLE


def cast_steps(steps: Sequence[Step], dtype: np.dtype) -> list[Step]:
    """``steps`` in the caller's working precision: butterflies and diagonals in single precision
    (complex64 or float32, by their own kind) when ``dtype`` is single; everything else untouched."""
    if not is_single(dtype):
        return list(steps)
    out = []
    for step in steps:
        if step.kind in ("butterfly", "diagonal"):
            step = Step(step.kind, step.data.astype(np.complex64 if np.iscomplexobj(step.data) else np.float32))
        out.append(step)
    return out


def finish_steps(steps: Sequence[Step], matrix: np.ndarray) -> list[Step]:
    """:func:`cast_steps` to ``matrix``'s precision, then a final ``real`` step for a real target."""
    out = cast_steps(steps, np.asarray(matrix).dtype)
    return out if np.iscomplexobj(matrix) else out + [Step("real")]
