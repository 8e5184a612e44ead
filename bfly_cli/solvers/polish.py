"""Float64 L-BFGS polish of the twiddles of a chain, with the permutations held fixed.

The closed-form factorization is the best *hierarchical* fit, not the best butterfly fit: every
split is optimal for its own two-factor problem, but the recursion never revisits a factor. A
gradient method on the exact objective ``||M - T||_F^2`` (``M`` the whole chain, ``Re(M)`` for a
real target) fixes that. Gradients come from torch autograd through
:func:`~bfly_cli.torch_ops.butterfly_multiply_torch`; L-BFGS with a strong-Wolfe line search needs
no learning rate. Each evaluation forms ``M`` by applying the chain to the identity:
O(N^2 log N) per butterfly.

The polish is *monotone by construction*: it returns the best chain it evaluated, and the chain it
was given counts as evaluated, so it can never hand back something worse than its start.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from ..factors import Step
from ..torch_ops import butterfly_multiply_torch


@dataclass
class PolishResult:
    """The best chain seen, its loss, the start loss and how many loss evaluations it took."""

    steps: list[Step]
    start_loss: float
    final_loss: float
    evaluations: int
    seconds: float


def polish(target: np.ndarray, steps: list[Step], iterations: int, real_output: bool) -> PolishResult:
    """Minimize ``||M - T||_F^2`` over the butterfly twiddles of ``steps`` (complex, float64).

    ``real_output`` compares ``Re(M)`` with a real ``target`` (the chain then ends in a ``real``
    step). ``steps`` may contain ``permutation`` and ``butterfly`` steps only.
    """
    start = time.perf_counter()
    goal = torch.as_tensor(np.ascontiguousarray(target.T), dtype=torch.float64 if real_output else torch.complex128)
    params = [_to_param(s.data) for s in steps if s.kind == "butterfly"]
    perms = [None if s.kind == "butterfly" else torch.as_tensor(s.data) for s in steps]
    n = target.shape[0]
    best = {"loss": _loss_value(_forward(params, perms, n), goal, real_output), "data": _snapshot(params)}
    start_loss = best["loss"]
    count = [0]
    optimizer = torch.optim.LBFGS(
        params, lr=1.0, max_iter=iterations, max_eval=int(iterations * 1.5) + 5, history_size=20,
        tolerance_grad=1e-14, tolerance_change=1e-16, line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = _loss(_forward(params, perms, n), goal, real_output)
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
