"""Float64 L-BFGS polish of the twiddles of a chain, with the permutations held fixed.

The closed-form factorization is the best *hierarchical* fit, not the best butterfly fit: every
split is optimal for its own two-factor problem, but the recursion never revisits a factor. A
gradient method on the exact objective ``||M - T||_F^2`` (``M`` the whole chain, ``Re(M)`` for a
real target) fixes that. Gradients come from torch autograd through
:func:`~bfly_cli.torch_ops.butterfly_multiply_torch`; L-BFGS with a strong-Wolfe line search needs
no learning rate. A chain of several butterflies is formed by applying it to the identity,
O(N^2 log N) per butterfly. A single butterfly (``B P``, the budget-1 case) is formed in O(N^2):
split at the middle stage as in :mod:`..closed_form.hierarchical`, ``B[(c,b),(a,e)] = X_b[c,a] Y_a[b,e]``, so
the two halves are formed as small dense blocks (O(N^1.5 log N)) and ``B`` is one outer product
per block: one multiply per entry instead of log2 N stages, and autograd keeps no N x N
intermediates per stage (measured 4x faster per evaluation at N = 1024; same loss values).

The polish is *monotone by construction*: it returns the best chain it evaluated, and the chain it
was given counts as evaluated, so it can never hand back something worse than its start.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ...factors import Step
from ...torch_ops import butterfly_multiply_torch


@dataclass
class PolishResult:
    """The best chain seen, its loss, the start loss and how many loss evaluations it took."""

    steps: list[Step]
    start_loss: float
    final_loss: float
    evaluations: int
    seconds: float


def polish_twiddles(target: np.ndarray, steps: list[Step], iterations: int, real_output: bool) -> PolishResult:
    """Minimize ``||M - T||_F^2`` over the butterfly twiddles of ``steps`` (complex, float64).

    ``real_output`` compares ``Re(M)`` with a real ``target`` (the chain then ends in a ``real``
    step). ``steps`` may contain ``permutation`` and ``butterfly`` steps only.
    """
    start = time.perf_counter()
    forward, layout = _model(steps, target.shape[0])
    goal = torch.as_tensor(np.ascontiguousarray(layout(target)), dtype=torch.float64 if real_output else torch.complex128)
    params = [_to_param(s.data) for s in steps if s.kind == "butterfly"]
    best = {"loss": _loss_value(forward(params), goal, real_output), "data": _snapshot(params)}
    start_loss = best["loss"]
    count = [0]
    optimizer = torch.optim.LBFGS(
        params, lr=1.0, max_iter=iterations, max_eval=int(iterations * 1.5) + 5, history_size=20,
        tolerance_grad=1e-14, tolerance_change=1e-16, line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = _loss(forward(params), goal, real_output)
        loss.backward()
        count[0] += 1
        value = float(loss.detach())
        if np.isfinite(value) and value < best["loss"]:
            best["loss"], best["data"] = value, _snapshot(params)
        return loss

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small 2x2 kernels: extra threads only contend (measured 2-3x slower)
    try:
        if iterations > 0:
            optimizer.step(closure)
    finally:
        torch.set_num_threads(threads)
    out = _rebuild(steps, best["data"])
    return PolishResult(out, start_loss, best["loss"], count[0], time.perf_counter() - start)


def _to_param(twiddle: np.ndarray) -> torch.Tensor:
    """A real leaf tensor ``(..., 2)`` holding the complex twiddles (L-BFGS wants real parameters)."""
    data = np.ascontiguousarray(twiddle.astype(np.complex128))
    return torch.view_as_real(torch.as_tensor(data)).clone().requires_grad_(True)


def _model(steps: list[Step], n: int) -> tuple[Callable[[list[torch.Tensor]], torch.Tensor], Callable[[np.ndarray], np.ndarray]]:
    """The forward map of the chain's parameters, and how to lay out the target to compare with it.

    ``[permutation, butterfly]`` (``M = B P``, so ``M[:, perm] = B``) takes the O(N^2) single-block
    path of the module docstring and is compared with ``T[:, perm]``; any other chain is applied
    to the identity and compared with ``T^T``.
    """
    kinds = [s.kind for s in steps]
    if kinds == ["permutation", "butterfly"] and n >= 4:
        perm = np.asarray(steps[0].data)
        return (lambda params: _single_dense(torch.view_as_complex(params[0]))), (lambda t: t[:, perm])
    perms = [None if s.kind == "butterfly" else torch.as_tensor(s.data) for s in steps]
    return (lambda params: _forward(params, perms, n)), (lambda t: t.T)


def _single_dense(tw: torch.Tensor) -> torch.Tensor:
    """The matrix ``B`` of one butterfly ``(L, N/2, 2, 2)`` as one outer product per block, O(N^2).

    Stages ``0..low-1`` are ``hi`` independent butterflies ``Y_a`` of size ``lo``; stages
    ``low..L-1`` are ``lo`` interleaved butterflies ``X_b`` of size ``hi`` (layout of
    :func:`~.hierarchical.factor_butterfly`), and ``B[(c,b),(a,e)] = X_b[c,a] Y_a[b,e]``.
    """
    levels, half = tw.shape[:2]
    n, low = 2 * half, levels // 2
    hi, lo = 1 << (levels - low), 1 << low
    lower = _dense_batch(tw[:low].reshape(low, hi, lo // 2, 2, 2))  # (a, b, e)
    upper = tw[low:].reshape(levels - low, hi // 2, lo, 2, 2).transpose(1, 2)
    x = _dense_batch(upper)  # (b, c, a)
    return (x.permute(1, 0, 2)[:, :, :, None] * lower.permute(1, 0, 2)[None]).reshape(n, n)


def _dense_batch(tw: torch.Tensor) -> torch.Tensor:
    """Matrices ``(B, m, m)`` of a batch of butterflies ``(levels, B, m/2, 2, 2)`` (stride 1 first)."""
    levels, batch, half = tw.shape[:3]
    m = 2 * half
    x = torch.eye(m, dtype=tw.dtype).expand(batch, m, m)  # x[k, i, j]: row i of the matrix, column j
    for level in range(levels):
        s = 1 << level
        v = x.reshape(batch, m // (2 * s), 2, s, m)
        t = tw[level].reshape(batch, m // (2 * s), s, 2, 2)[..., None]
        y0 = t[..., 0, 0, :] * v[:, :, 0] + t[..., 0, 1, :] * v[:, :, 1]
        y1 = t[..., 1, 0, :] * v[:, :, 0] + t[..., 1, 1, :] * v[:, :, 1]
        x = torch.stack([y0, y1], dim=2).reshape(batch, m, m)
    return x


def _forward(params: list[torch.Tensor], perms: list[torch.Tensor | None], n: int) -> torch.Tensor:
    """``M^T``: the chain applied to every basis vector (row i is ``M e_i``)."""
    x = torch.eye(n, dtype=torch.complex128)
    it = iter(params)
    for perm in perms:
        if perm is None:
            x = butterfly_multiply_torch(torch.view_as_complex(next(it)), x)
        else:
            x = x[..., perm]
    return x


def _loss(out: torch.Tensor, goal: torch.Tensor, real_output: bool) -> torch.Tensor:
    diff = (out.real if real_output else out) - goal
    return torch.sum(diff.real**2 + diff.imag**2) if diff.is_complex() else torch.sum(diff**2)


def _loss_value(out: torch.Tensor, goal: torch.Tensor, real_output: bool) -> float:
    with torch.no_grad():
        return float(_loss(out, goal, real_output))


def _snapshot(params: list[torch.Tensor]) -> list[np.ndarray]:
    return [torch.view_as_complex(p.detach()).numpy().copy() for p in params]


def _rebuild(steps: list[Step], data: list[np.ndarray]) -> list[Step]:
    """``steps`` with the butterfly twiddles replaced, in order, by ``data``."""
    it = iter(data)
    return [Step("butterfly", next(it)) if s.kind == "butterfly" else s for s in steps]
