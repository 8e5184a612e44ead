"""One float64 refinement engine for butterfly chains: L-BFGS, then Levenberg-Marquardt.

Two entry points: :func:`refine_steps` (a transposed torch target, the gradient learner's
per-order fits and final polish) and :func:`polish` (numpy in and out, the approximation route's
near-exact finish). Permutations stay fixed; every twiddle,
diagonal and rank-2 stage is trainable; the best iterate seen is kept, so a refinement never
returns something worse than its input. Levenberg-Marquardt solves its normal equations by
matrix-free CG (forward- and reverse-mode products), or exactly when the system is small.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from ...devices import check_device
from ...factors import Step
from ...layout import pair_positions


def relative_sq_error(out_t, target_t, target_norm2) -> Any:
    """``||M - T||_F^2 / ||T||_F^2`` from transposed matrices (scale-free, so one lr range fits all)."""
    diff = out_t - target_t
    sq = diff.real.square().sum() + (diff.imag.square().sum() if diff.is_complex() else 0.0)
    return sq / target_norm2


def squared_norm(target) -> Any:
    """``||T||_F^2`` of a (possibly complex) tensor."""
    return target.abs().square().sum()


def polish(matrix: np.ndarray, steps: Sequence[Step], *, max_iter: int = 500, device: str = "cpu",
           target: float = 0.0) -> list[Step]:
    """Refit every twiddle and diagonal of ``steps`` to ``matrix`` with float64 L-BFGS.

    Permutations (and ``real`` steps) stay fixed. The best iterate is kept, so the result's
    relative error is never above the input's (the input is returned unchanged when nothing
    helps). Stops early once the relative error is at or below ``target``. The returned data are
    float64/complex128.
    """
    import torch

    check_device(device)
    tgt = torch.as_tensor(np.ascontiguousarray(np.asarray(matrix).T), device=device)
    tgt = tgt.to(torch.complex128 if tgt.is_complex() else torch.float64)
    wide = [_widen(s) for s in steps]
    out, _ = refine_steps(tgt, wide, max_iter, target**2, newton=True)
    return out


def _widen(step: Step) -> Step:
    """A float64/complex128 copy of a step's numeric data (permutations untouched)."""
    if step.kind in ("butterfly", "diagonal"):
        return Step(step.kind, step.data.astype(np.complex128 if np.iscomplexobj(step.data) else np.float64))
    return step


def refine_steps(target, steps: list[Step], max_iter: int, goal: float, newton: bool = False,
                 newton_below: float = math.inf, gn_iters: int = 30) -> tuple[list[Step], float]:
    """Float64 L-BFGS (then Gauss-Newton when ``newton``) over the steps' numeric data.

    Returns the best steps seen and their loss. Gauss-Newton only runs when L-BFGS ended at or
    below ``newton_below``: far from a zero residual it costs much and gains little. L-BFGS is
    robust far from a solution but crawls
    on the last digits of a zero-residual fit whose gauge leaves flat directions (worst with a
    ``Re`` readout, where the imaginary part is free); Gauss-Newton converges fast there.
    """
    import torch

    from ...torch_butterfly import modules_to_steps, steps_to_modules

    module = steps_to_modules([_balance(_widen(s)) for s in steps], device=target.device)
    eye = torch.eye(target.shape[0], dtype=torch.float64, device=target.device)
    norm2 = squared_norm(target)
    params = list(module.parameters())
    best = _Best(params)

    def closure():
        opt.zero_grad(set_to_none=True)
        loss = relative_sq_error(module(eye), target, norm2)
        loss.backward()
        best.offer(float(loss.detach()))
        return loss

    done, resets = 0, 0
    opt = _lbfgs(params, max_iter)
    while done < max_iter and best.loss > goal and params:
        before = best.loss
        opt.step(closure)
        done += min(max_iter, _CHUNK)
        if best.loss < before * (1 - 1e-3):
            resets = 0
            continue
        if resets >= 1:
            break
        best.restore()  # a stalled L-BFGS often has a spoilt curvature history: start it afresh
        opt, resets = _lbfgs(params, max_iter), resets + 1
    if not params or done == 0:
        with torch.no_grad():
            best.offer(float(relative_sq_error(module(eye), target, norm2)))
    best.restore()
    if params and goal < best.loss <= newton_below and newton:
        _gauss_newton(module, eye, target, norm2, goal, best, gn_iters)
        best.restore()
    return modules_to_steps(module), best.loss


_CHUNK = 50
GN_STRUCTURED = 4000  # rank-2 parameters up to which LM solves the normal equations exactly (N <= 64)
_GN_DENSE = 4e6  # Jacobian entries (residuals x parameters) up to which LM forms it (N <= 32)
_GN_CG = 60  # CG iterations per matrix-free Levenberg-Marquardt step
_GN_STALL = 20  # stop Levenberg-Marquardt when this many steps have not halved the loss


def _gauss_newton(module, eye, target, norm2, goal: float, best: "_Best", outer: int = 30) -> None:
    """Levenberg-Marquardt on the residual, normal equations solved matrix-free by CG.

    ``J v`` comes from forward-mode AD and ``J^T u`` from reverse mode, so nothing of size
    (entries x parameters) is ever formed. ``best`` sees every accepted iterate.
    """
    import torch
    from torch.func import functional_call, jvp, vjp

    names = [name for name, _ in module.named_parameters()]
    scale = 1.0 / math.sqrt(float(norm2))

    def resid(*ps):
        d = functional_call(module, dict(zip(names, ps)), (eye,)) - target
        return (torch.view_as_real(d) if d.is_complex() else d).reshape(-1) * scale

    from . import rank2_als

    ps = tuple(p.detach().clone() for p in module.parameters())
    structured = _rank2_layout(module)
    size = sum(p.numel() for p in ps)
    dense = size <= GN_STRUCTURED if structured is not None else size * 2 * target.numel() <= _GN_DENSE
    lam = 1e-3 if dense else 1e-4
    history: list[float] = []
    normal_eq = None  # dense (J^T J, J^T r) at ps, kept across rejected steps
    blocks = None  # rank-2 beyond the dense size: per-level diagonal blocks of J^T J (the preconditioner)
    for _ in range(outer):
        r, pullback = vjp(resid, *ps)
        loss = float(r.square().sum())
        history.append(loss)
        if loss <= goal or (len(history) > _GN_STALL and loss > 0.5 * history[-1 - _GN_STALL]):
            break
        if dense:
            if normal_eq is None and structured is not None:
                normal_eq = rank2_als.normal_equations(structured, ps[0], scale**2, pullback(r)[0])
            elif normal_eq is None:
                normal_eq = _normal_equations(resid, ps, r)
            delta = _dense_step(normal_eq, ps, lam)
        else:
            grad = pullback(r)

            def normal(v):
                return tuple(a + lam * b for a, b in zip(pullback(jvp(resid, ps, v)[1]), v))

            precond = None
            if structured is not None:
                if blocks is None:
                    blocks = rank2_als.level_blocks(structured, ps[0], scale**2)
                precond = _block_jacobi(blocks, lam)
            delta = _cg(normal, tuple(-g for g in grad), _GN_CG, precond)
        trial = tuple(p + d for p, d in zip(ps, delta))
        with torch.no_grad():
            new = float(resid(*trial).square().sum())
        if new < loss:
            ps, lam, normal_eq, blocks = trial, max(lam / 10, 1e-12), None, None
            _set_params(module, ps)
            best.offer(new)
        else:
            lam *= 10
            if lam > 1e4:
                break


def _normal_equations(resid, ps: tuple, r) -> tuple:
    """``(J^T J, J^T r)`` from the explicit Jacobian (forward mode), for small problems."""
    import torch
    from torch.func import jacfwd

    jac = jacfwd(resid, argnums=tuple(range(len(ps))))(*ps)
    j = torch.cat([a.reshape(r.numel(), -1) for a in jac], dim=1)
    return j.T @ j, j.T @ r


def _rank2_layout(module) -> np.ndarray | None:
    """The input permutation when ``module`` is exactly [permutation, rank2], else None."""
    from ...torch_butterfly import FixedPermutation, Rank2

    mods = list(module)
    if len(mods) == 2 and isinstance(mods[0], FixedPermutation) and isinstance(mods[1], Rank2):
        return mods[0].perm
    return None


def _block_jacobi(blocks: list, lam: float) -> Callable:
    """Preconditioner solving each level's Marquardt-damped diagonal block exactly (Cholesky).

    Without it CG on the rank-2 normal equations needs hundreds of iterations a step (the GL(2)
    gauge and the very different scales of the levels); the levels' own blocks carry most of that.
    """
    import torch

    factors = []
    for block in blocks:
        damped = block + torch.diag(block.diagonal().clamp_min(1e-12) * max(lam, 1e-10))
        factors.append(torch.linalg.cholesky(damped))

    def apply(r: tuple) -> tuple:
        flat = r[0].reshape(len(factors), -1)
        out = [torch.cholesky_solve(flat[i, :, None], f)[:, 0] for i, f in enumerate(factors)]
        return (torch.stack(out).reshape(r[0].shape),)

    return apply


def _dense_step(normal_eq: tuple, ps: tuple, lam: float) -> tuple:
    """One Marquardt step solved exactly (no CG tolerance), split back into the parameters.

    Damping is scaled by the diagonal of ``J^T J`` (Marquardt), which suits parameters of very
    different sensitivity; the rank-2 model's GL(2) gauge makes ``J^T J`` singular, which the
    damping handles while CG on the same system needs hundreds of iterations.
    """
    import torch

    jtj, jtr = normal_eq
    damp = jtj.diagonal().clamp_min(1e-12) * lam
    flat = torch.linalg.solve(jtj + torch.diag(damp), -jtr)
    out, at = [], 0
    for p in ps:
        out.append(flat[at:at + p.numel()].reshape(p.shape))
        at += p.numel()
    return tuple(out)


def _cg(apply, rhs: tuple, iters: int, precond: Callable | None = None) -> tuple:
    """(Preconditioned) conjugate gradients for a symmetric positive definite operator on tuples."""
    dot = lambda a, b: sum(float((x * y).sum()) for x, y in zip(a, b))  # noqa: E731
    x = tuple(0 * b for b in rhs)
    r = rhs
    z = precond(r) if precond is not None else r
    p = z
    rz = dot(r, z)
    stop = dot(r, r) * _CG_TOL
    for _ in range(iters):
        if dot(r, r) <= stop:
            break
        ap = apply(p)
        alpha = rz / max(dot(p, ap), 1e-300)
        x = tuple(a + alpha * b for a, b in zip(x, p))
        r = tuple(a - alpha * b for a, b in zip(r, ap))
        z = precond(r) if precond is not None else r
        new = dot(r, z)
        p = tuple(a + (new / rz) * b for a, b in zip(z, p))
        rz = new
    return x


_CG_TOL = 1e-20  # (measured at N = 128: a looser 1e-8 made LM stall at 1e-19 instead of reaching 1e-22)


def _set_params(module, values: tuple) -> None:
    import torch

    with torch.no_grad():
        for p, v in zip(module.parameters(), values):
            p.copy_(v)


def _lbfgs(params: list, max_iter: int):
    """Float64 L-BFGS that never stops on its own tolerances (the caller decides when to stop)."""
    import torch

    return torch.optim.LBFGS(params, lr=1, max_iter=min(max_iter, _CHUNK), history_size=50, tolerance_grad=0.0,
                             tolerance_change=1e-32, line_search_fn="strong_wolfe")


class _Best:
    """Remembers the parameters of the lowest loss offered (L-BFGS may end on a worse iterate)."""

    def __init__(self, params: list) -> None:
        self.params, self.loss, self.saved = params, math.inf, None

    def offer(self, loss: float) -> None:
        if loss < self.loss:
            self.loss, self.saved = loss, [p.detach().clone() for p in self.params]

    def restore(self) -> None:
        import torch

        if self.saved is not None:
            with torch.no_grad():
                for p, s in zip(self.params, self.saved):
                    p.copy_(s)


def _balance(step: Step) -> Step:
    """Rescale a butterfly's gauge so adjacent stages carry equal norms at every coordinate.

    ``F_{l+1} F_l = (F_{l+1} D^-1)(D F_l)`` for any positive diagonal D: the product is unchanged,
    but L-BFGS converges far better when no coordinate is carried by a huge factor times a tiny one.
    """
    if step.kind != "butterfly":
        return step
    tw = step.data.copy()
    levels, half = tw.shape[:2]
    n = 2 * half
    for _ in range(2):
        for l in range(levels - 1):
            s, first, nxt = 1 << l, pair_positions(n, l), pair_positions(n, l + 1)
            rows, cols = np.empty(n), np.empty(n)
            rows[first], rows[first + s] = np.linalg.norm(tw[l, :, 0, :], axis=-1), np.linalg.norm(tw[l, :, 1, :], axis=-1)
            cols[nxt], cols[nxt + 2 * s] = np.linalg.norm(tw[l + 1, :, :, 0], axis=-1), np.linalg.norm(tw[l + 1, :, :, 1], axis=-1)
            ok = (rows > 0) & (cols > 0)
            scale = np.where(ok, np.sqrt(np.where(ok, cols, 1.0) / np.where(ok, rows, 1.0)), 1.0)
            tw[l, :, 0, :] *= scale[first, None]
            tw[l, :, 1, :] *= scale[first + s, None]
            tw[l + 1, :, :, 0] /= scale[nxt, None]
            tw[l + 1, :, :, 1] /= scale[nxt + 2 * s, None]
    return Step("butterfly", tw)
