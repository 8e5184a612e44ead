"""The transpose of a chain of steps, in the project's step kinds.

Shuffled *rows* ``T = Q C`` are shuffled columns of ``T^T = C^T Q^T``. When ``C^T`` is in the same
class as ``C`` (a circulant's transpose is a circulant; the DFT, Hadamard and Hartley matrices are
symmetric), the one-sided column-order discovery solves ``T^T`` and the chain is transposed back:
the two-butterfly, B.P and rank-2 routes all try this before (or instead of) a two-sided search. ``M = S_m ... S_1`` has ``M^T = S_1^T ... S_m^T``: the steps in reverse
order, each transposed:

- a permutation ``x <- x[perm]`` becomes its inverse ``x <- x[argsort(perm)]``;
- a butterfly ``B`` becomes ``R B'' R``: a stage of stride ``2^l`` transposes into one of the same
  stride with transposed blocks, applied in decreasing stride, which bit reversal ``R`` turns
  into an increasing-stride butterfly (:func:`~.butterfly_inverse.reverse_stages`, exact);
- a ``rank2`` step likewise: each stage's 4x4 blocks (2 positions x 2 slots) transposed, the
  stages reversed by the same relabelling (the slot-0 input and output ends swap roles, which
  leaves them at slot 0);
- a diagonal is its own transpose.

Consecutive permutations are then merged (``x[a][b] = x[a[b]]``) and identities dropped, so
``[P, B2, R, W]`` becomes ``[R, W'', R, B2'', R P^-1]``: structure ``PBPBP``.
"""

from __future__ import annotations

import numpy as np

from ...factors import Step, bit_reversal
from .butterfly_inverse import reverse_stages


def transpose_steps(steps: list[Step]) -> list[Step]:
    """Steps of ``M^T`` for the chain ``steps`` (permutations, butterflies, rank2, diagonals; no ``real``)."""
    out: list[Step] = []
    for step in reversed(steps):
        out.extend(_transpose_one(step))
    return _merge_permutations(out)


def _transpose_one(step: Step) -> list[Step]:
    """One step's transpose, as one or three steps."""
    if step.kind == "permutation":
        return [Step("permutation", np.argsort(step.data).astype(np.int64))]
    if step.kind == "butterfly":
        n = 2 * step.data.shape[1]
        rev = bit_reversal(n)
        blocks = reverse_stages(np.swapaxes(step.data, -1, -2))
        return [Step("permutation", rev), Step("butterfly", blocks), Step("permutation", rev)]
    if step.kind == "rank2":
        n = 2 * step.data.shape[1]
        levels = step.data.shape[0]
        rev = bit_reversal(n)
        blocks = np.transpose(step.data, (0, 1, 4, 5, 2, 3)).reshape(levels, n // 2, 4, 4)
        blocks = reverse_stages(blocks).reshape(step.data.shape)
        return [Step("permutation", rev), Step("rank2", np.ascontiguousarray(blocks)), Step("permutation", rev)]
    if step.kind == "diagonal":
        return [step]
    raise ValueError(f"cannot transpose a {step.kind!r} step")


def _merge_permutations(steps: list[Step]) -> list[Step]:
    """Consecutive permutation steps as one; identity permutations dropped."""
    out: list[Step] = []
    for step in steps:
        if step.kind == "permutation" and out and out[-1].kind == "permutation":
            out[-1] = Step("permutation", out[-1].data[step.data])
        else:
            out.append(step)
    return [s for s in out if not (s.kind == "permutation" and np.array_equal(s.data, np.arange(s.data.size)))]
