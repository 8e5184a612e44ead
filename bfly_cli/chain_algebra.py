"""Transpose, adjoint and inverse of a chain of steps, as chains of the project's step kinds.

``M = S_m ... S_1`` (steps applied in order) has ``M^T = S_1^T ... S_m^T``: the steps in reverse
order, each transposed, and likewise for the adjoint and the inverse. Every result is again a list
of ordinary steps, so it can be saved, applied by the compiled kernel and exported like any
learned factorization. All of it is exact (index relabelling, 2x2 / 4x4 block transposes, 2x2
inversions): no dense matrix is ever formed.

- a permutation ``x <- x[perm]`` transposes (and inverts) to ``x <- x[argsort(perm)]``;
- a butterfly ``B`` becomes ``R B'' R``: a stage of stride ``2^l`` transposes into one of the same
  stride with transposed blocks, applied in *decreasing* stride, which conjugation by the
  bit reversal ``R`` turns into an increasing-stride butterfly (:func:`~bfly_cli.layout.reverse_stages`).
  Its inverse is the same with inverted blocks (refused when a block is singular);
- a ``rank2`` step likewise: each stage's 4x4 blocks (2 positions x 2 slots) transposed, the
  stages reversed by the same relabelling (its slot-0 input and output ends stay at slot 0).
  It has no inverse in the step kinds (its blocks are 4x4 maps of a 2-slot state, read at one slot);
- a diagonal is its own transpose, conjugated for the adjoint, reciprocal for the inverse;
- a final ``real`` step (``M = Re(C)``, a real matrix defined on real vectors) stays last:
  ``M^T = Re(C^T)``, and ``M^H = M^T``. A ``real`` step anywhere else has no transpose in the
  step kinds, and no chain with a ``real`` step is invertible as steps.

Consecutive permutations are merged (``x[a][b] = x[a[b]]``) and identities dropped.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .errors import BflyError
from .factors import Step
from .layout import bit_reversal, reverse_stages

SINGULAR_BLOCK = 1e-13  # |det| / |block|^2 below which a 2x2 block (and the butterfly) is singular


class NotInvertible(BflyError):
    """The chain has a step with no inverse in the step kinds (or a singular one)."""


def transpose_steps(steps: list[Step]) -> list[Step]:
    """Steps of ``M^T`` for the chain ``steps``."""
    return _reverse_chain(steps, _transpose_one, conj=False)


def adjoint_steps(steps: list[Step]) -> list[Step]:
    """Steps of ``M^H`` (conjugate transpose) for the chain ``steps``."""
    return _reverse_chain(steps, _transpose_one, conj=True)


def inverse_steps(steps: list[Step]) -> list[Step]:
    """Steps of ``M^-1``; :class:`NotInvertible` names the first step that has no inverse."""
    for k, step in enumerate(steps):
        if step.kind in ("real", "rank2"):
            raise NotInvertible(f"step {k} ({step.kind}) has no inverse as steps; use a dense solve "
                                "(scipy.linalg.solve on to_dense()) or an iterative one (as_linear_operator())")
    return _merge_permutations([part for k, step in reversed(list(enumerate(steps))) for part in _invert_one(step, k)])


def _reverse_chain(steps: list[Step], one: Callable[[Step, bool], list[Step]], conj: bool) -> list[Step]:
    """``one`` applied to every step in reverse order; a final ``real`` step stays last."""
    body, tail = list(steps), []
    if body and body[-1].kind == "real":
        body, tail = body[:-1], [body[-1]]
        conj = False  # Re(C)^H = Re(C)^T = Re(C^T): the real matrix has no conjugate to take
    for k, step in enumerate(body):
        if step.kind == "real":
            raise BflyError(f"step {k} (real) is not the last step: such a chain has no transpose as steps")
    out = [part for step in reversed(body) for part in one(step, conj)]
    return _merge_permutations(out) + tail


def _transpose_one(step: Step, conj: bool) -> list[Step]:
    """One step's transpose (conjugated when ``conj``), as one or three steps."""
    if step.kind == "permutation":
        return [Step("permutation", np.argsort(step.data).astype(np.int64))]
    if step.kind == "diagonal":
        return [Step("diagonal", np.conj(step.data) if conj else step.data.copy())]
    if step.kind == "butterfly":
        blocks = np.swapaxes(step.data, -1, -2)
        return _bit_reversed("butterfly", reverse_stages(np.conj(blocks) if conj else blocks))
    if step.kind == "rank2":
        levels, half = step.data.shape[:2]
        blocks = np.transpose(step.data, (0, 1, 4, 5, 2, 3)).reshape(levels, half, 4, 4)
        blocks = reverse_stages(np.conj(blocks) if conj else blocks).reshape(step.data.shape)
        return _bit_reversed("rank2", np.ascontiguousarray(blocks))
    raise BflyError(f"cannot transpose a {step.kind!r} step")


def _invert_one(step: Step, k: int) -> list[Step]:
    """One step's inverse, as one or three steps (kinds checked by the caller)."""
    if step.kind == "permutation":
        return [Step("permutation", np.argsort(step.data).astype(np.int64))]
    if step.kind == "diagonal":
        if not np.all(np.isfinite(step.data)) or np.any(step.data == 0):
            raise NotInvertible(f"step {k} (diagonal) has a zero (or non-finite) entry: the chain is singular")
        return [Step("diagonal", 1 / step.data)]
    inv, ratio = invert_blocks(step.data)
    if not ratio >= SINGULAR_BLOCK:  # NaN included
        raise NotInvertible(f"step {k} (butterfly) has a singular 2x2 block (|det| / |block|^2 = {ratio:.1e})")
    return _bit_reversed("butterfly", reverse_stages(inv))


def invert_blocks(twiddle: np.ndarray) -> tuple[np.ndarray, float]:
    """Inverse of every 2x2 block, and the smallest ``|det| / (norm^2)`` seen (conditioning).

    A tiny ratio means the butterfly is (numerically) singular and its inverse is meaningless.
    """
    a, b = twiddle[..., 0, 0], twiddle[..., 0, 1]
    c, d = twiddle[..., 1, 0], twiddle[..., 1, 1]
    det = a * d - b * c
    scale = np.sum(np.abs(twiddle) ** 2, axis=(-2, -1))
    ratio = float(np.min(np.abs(det) / np.maximum(scale, np.finfo(np.float64).tiny)))
    safe = np.where(det == 0, 1, det)
    inv = np.stack([np.stack([d, -b], -1), np.stack([-c, a], -1)], -2) / safe[..., None, None]
    return inv, ratio


def _bit_reversed(kind: str, data: np.ndarray) -> list[Step]:
    """``R S R`` for an increasing-stride step ``S`` of ``kind``: three steps."""
    rev = bit_reversal(2 * data.shape[1])
    return [Step("permutation", rev), Step(kind, data), Step("permutation", rev)]


def _merge_permutations(steps: list[Step]) -> list[Step]:
    """Consecutive permutation steps as one; identity permutations dropped (one kept if nothing is left)."""
    out: list[Step] = []
    for step in steps:
        if step.kind == "permutation" and out and out[-1].kind == "permutation":
            out[-1] = Step("permutation", out[-1].data[step.data])
        else:
            out.append(step)
    kept = [s for s in out if not (s.kind == "permutation" and np.array_equal(s.data, np.arange(s.data.size)))]
    return kept or out[:1]
