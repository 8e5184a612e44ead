"""Torch modules for the seed paper's differentiable butterfly model (Dao et al., ICML 2019).

Usable on their own (drop a :class:`Butterfly` into any ``nn.Module``) and used by the
``gradient`` solver. Every module converts to and from the project's one step layout
(:mod:`bfly_cli.factors`): twiddles ``(L, N/2, 2, 2)``, increasing stride, ``x <- x[perm]``
permutations. No second on-disk format exists; the layouts below are training conveniences only.

``Butterfly``
    ``nblocks`` butterflies applied one after another. Each twiddle set is either *untied*
    (``(L, N/2, 2, 2)``, 2 N log2 N numbers, exactly the canonical layout) or *tied* (the paper's
    4(N-1) numbers: stage ``l`` acts as ``I_{N/2s} (x) B_{2s}`` with one ``2s x 2s`` butterfly factor,
    a 2x2 of diagonals of length ``s = 2**l``, shared by all ``N/2s`` blocks; stored as
    ``(N-1, 2, 2)``, level ``l`` in rows ``[2**l - 1, 2**(l+1) - 1)``, row ``low`` serving pair
    ``i`` when ``i % s == low``). Complex twiddles are held as a real parameter with a trailing
    axis of 2 (``torch.view_as_complex``) so every optimizer, L-BFGS included, sees real numbers.

    *Decreasing stride* (stride N/2 first, decimation in frequency) uses the same per-level
    indexing (row ``l`` is the stage of stride ``2**l``), applied ``l = L-1 .. 0``. It is not an
    increasing-stride butterfly, but it is one conjugated by the bit reversal ``R``:
    ``B_dec = R B_inc R`` with ``tw_inc[L-1-l, i'] = tw_dec[l, i]`` where pair ``i`` (stride
    ``2**l``, first index ``pos``) maps to the pair ``i'`` of stride ``N/2**(l+1)`` whose first
    index is ``R(pos)``. :meth:`Butterfly.to_steps` therefore writes ``[perm R, butterfly, perm R]``.

``LearnablePermutation``
    The paper's relaxation. The permutation is a product over block sizes ``k = N, N/2, .., 4``
    (applied in that order; block size 2 is always the identity) of three choices per level, each
    acting inside every block of size k: (0) separate evens from odds, (1) reverse the first half,
    (2) reverse the second half. Choice ``c`` is taken with probability ``sigmoid(logit)`` and the
    relaxed factor is ``(1 - p) I + p P_c``, a doubly stochastic matrix. Logits are per level
    ``(L-1, 3)`` or shared ``(3,)``. :meth:`LearnablePermutation.hard_choices` rounds ``p`` to
    0/1; with every "separate" choice on and no reversal the result is the bit reversal.

``ButterflyChain``
    A model such as ``"BP"``, ``"BPP"`` or ``"BPBP"`` (product notation: the rightmost factor is
    applied first), optionally followed by ``Re(.)`` for real targets fitted with complex twiddles
    (the paper compared real parts only). :meth:`ButterflyChain.to_steps` rounds the permutations.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from .factors import Step
from .layout import bit_reversal, compose_permutations, log2_exact, permutation_blocks, permutation_from_choices
from .layout import pair_positions as _pair_first  # noqa: F401  (solvers/gradient/refine.py imports it from here)
from .layout import reverse_stages as decreasing_to_increasing
from .layout import unreverse_stages as increasing_to_decreasing
from .step_kinds import kind_of
from .torch_ops import rank2_multiply_torch, stage_multiply_torch

__all__ = [
    "Butterfly", "LearnablePermutation", "ButterflyChain", "FixedPermutation", "RealPart", "Rank2", "MODELS",
    "from_file", "steps_to_modules", "modules_to_steps", "merge_permutations", "soft_permute", "butterfly_apply",
    "stage_multiply", "tied_to_untied",
    # numpy index helpers, defined in bfly_cli.layout and re-exported where callers found them
    "bit_reversal", "decreasing_to_increasing", "increasing_to_decreasing", "permutation_blocks",
    "permutation_from_choices", "compose_permutations",
]

stage_multiply = stage_multiply_torch  # one torch stage loop (bfly_cli.torch_ops); the historical name


# ---------------------------------------------------------------------------------------------
# index bookkeeping


def _levels(n: int) -> int:
    """log2(n), with a message naming the value when n is not a power of two >= 2."""
    levels = log2_exact(n)
    if levels < 1:
        raise ValueError(f"n = {n} is not a power of two >= 2")
    return levels


def tied_to_untied(tied: torch.Tensor, n: int) -> torch.Tensor:
    """Expand tied twiddles ``(..., N-1, 2, 2)`` to the canonical ``(..., L, N/2, 2, 2)``."""
    levels = _levels(n)
    out = []
    for l in range(levels):
        s = 1 << l
        level = tied[..., s - 1 : 2 * s - 1, :, :]
        reps = [1] * (level.dim() - 3) + [n // (2 * s), 1, 1]
        out.append(level.repeat(*reps))
    return torch.stack(out, dim=-4)


def butterfly_apply(twiddle: torch.Tensor, x: torch.Tensor, increasing_stride: bool = True) -> torch.Tensor:
    """Apply untied twiddles ``(L, N/2, 2, 2)``; stride 1 first unless ``increasing_stride`` is False."""
    levels = twiddle.shape[0]
    if twiddle.is_complex() and not x.is_complex():
        x = x.to(twiddle.dtype)
    order = range(levels) if increasing_stride else range(levels - 1, -1, -1)
    for lev in order:
        x = stage_multiply_torch(twiddle[lev], x, lev)
    return x


# ---------------------------------------------------------------------------------------------
# modules


def _real_dtype(dtype: torch.dtype) -> torch.dtype:
    return {torch.complex64: torch.float32, torch.complex128: torch.float64}.get(dtype, dtype)


class Butterfly(nn.Module):
    """``nblocks`` butterflies in sequence (module docstring: tied/untied, stride order, complex).

    Random initialization draws each twiddle entry with ``E|t|^2 = 1/2`` so every stage preserves
    the expected norm (a random product neither explodes nor vanishes with depth).
    """

    def __init__(
        self,
        n: int,
        *,
        complex: bool = False,
        tied: bool = False,
        increasing_stride: bool = True,
        nblocks: int = 1,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.n, self.levels = n, _levels(n)
        self.complex, self.tied = complex, tied
        self.increasing_stride, self.nblocks = increasing_stride, nblocks
        body = (n - 1, 2, 2) if tied else (self.levels, n // 2, 2, 2)
        shape = (nblocks, *body, 2) if complex else (nblocks, *body)
        scale = math.sqrt(0.25 if complex else 0.5)
        init = torch.randn(shape, generator=generator, dtype=_real_dtype(dtype)) * scale
        self.twiddle = nn.Parameter(init.to(device))

    def untied_twiddles(self) -> torch.Tensor:
        """Twiddles ``(nblocks, L, N/2, 2, 2)`` (complex when the module is), tied ones expanded."""
        tw = torch.view_as_complex(self.twiddle) if self.complex else self.twiddle
        return tied_to_untied(tw, self.n) if self.tied else tw

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``y = B x`` along the last axis of ``x``."""
        tw = self.untied_twiddles()
        for block in range(self.nblocks):
            x = butterfly_apply(tw[block], x, self.increasing_stride)
        return x

    def to_steps(self) -> list[Step]:
        """Canonical steps: one butterfly per block (bit-reversal conjugated if decreasing)."""
        tw = self.untied_twiddles().detach().cpu().numpy()
        steps: list[Step] = []
        for block in range(self.nblocks):
            if self.increasing_stride:
                steps.append(Step("butterfly", tw[block].copy()))
            else:
                rev = bit_reversal(self.n)
                steps += [Step("permutation", rev.copy()), Step("butterfly", decreasing_to_increasing(tw[block])),
                          Step("permutation", rev.copy())]
        return merge_permutations(steps)

    @classmethod
    def from_twiddles(cls, twiddle: np.ndarray | torch.Tensor, *, increasing_stride: bool = True,
                      device: str | torch.device = "cpu") -> "Butterfly":
        """An untied module holding ``twiddle`` (``(L, N/2, 2, 2)`` or ``(nblocks, L, N/2, 2, 2)``)."""
        tw = torch.as_tensor(np.asarray(twiddle) if not isinstance(twiddle, torch.Tensor) else twiddle)
        tw = tw[None] if tw.dim() == 4 else tw
        n = 2 * tw.shape[-3]
        module = cls(n, complex=tw.is_complex(), increasing_stride=increasing_stride, nblocks=tw.shape[0],
                     dtype=_real_dtype(tw.dtype), device=device)
        data = torch.view_as_real(tw) if tw.is_complex() else tw
        module.twiddle = nn.Parameter(data.clone().to(device))
        return module

    def extra_repr(self) -> str:
        return (f"n={self.n}, complex={self.complex}, tied={self.tied}, "
                f"increasing_stride={self.increasing_stride}, nblocks={self.nblocks}")


class LearnablePermutation(nn.Module):
    """The paper's relaxed permutation (module docstring); logits start at ``randn``."""

    def __init__(self, n: int, *, share_logits: bool = False, dtype: torch.dtype = torch.float32,
                 device: str | torch.device = "cpu", generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.n, self.levels = n, _levels(n)
        self.share_logits = share_logits
        shape = (3,) if share_logits else (max(self.levels - 1, 0), 3)
        self.logit = nn.Parameter(torch.randn(shape, generator=generator, dtype=dtype).to(device))

    def probabilities(self) -> torch.Tensor:
        """``(L-1, 3)`` probabilities of (separate, reverse first half, reverse second half)."""
        prob = torch.sigmoid(self.logit)
        return prob.expand(self.levels - 1, 3) if self.share_logits else prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the relaxed (doubly stochastic) permutation along the last axis."""
        return soft_permute(x, self.probabilities())

    def hard_choices(self) -> np.ndarray:
        """The rounded choices ``(L-1, 3)`` as booleans (probability > 1/2)."""
        return (self.probabilities().detach().cpu().numpy() > 0.5).copy()

    def hard_permutation(self, choices: np.ndarray | None = None) -> np.ndarray:
        """The rounded permutation (or the one for given ``choices``), as ``x <- x[perm]``."""
        return permutation_from_choices(self.n, self.hard_choices() if choices is None else choices)

    def extra_repr(self) -> str:
        return f"n={self.n}, share_logits={self.share_logits}"


def soft_permute(x: torch.Tensor, prob: torch.Tensor) -> torch.Tensor:
    """Relaxed permutation: per level, mix ``x`` with its evens/odds split, then with half reversals.

    Written with reshapes, transposes and flips rather than index gathers: the same permutations
    (:func:`permutation_from_choices` is the gather form, and tests hold the two equal), but their
    backward passes are plain copies instead of scatter-adds, several times faster on an N x N input.
    """
    n = x.shape[-1]
    batch = x.shape[:-1]
    for block, p in zip(permutation_blocks(n), prob):
        half = block // 2
        split = x.reshape(*batch, n // block, half, 2).transpose(-1, -2).reshape(*batch, n)
        x = x + p[0] * (split - x)
        v = x.reshape(*batch, n // block, 2, half)
        x = (v + p[1:].reshape(2, 1) * (v.flip(-1) - v)).reshape(*batch, n)
    return x


class FixedPermutation(nn.Module):
    """A hard permutation step ``x <- x[perm]`` (the result of rounding)."""

    def __init__(self, perm: np.ndarray, device: str | torch.device = "cpu") -> None:
        super().__init__()
        self.register_buffer("perm", torch.as_tensor(np.asarray(perm, dtype=np.int64), device=device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., self.perm]

    def to_step(self) -> Step:
        return Step("permutation", self.perm.cpu().numpy().copy())


class RealPart(nn.Module):
    """``x <- Re(x)``: lets a complex model fit a real target, as the paper did."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.real if x.is_complex() else x

    def to_step(self) -> Step:
        return Step("real")


MODELS = ("BP", "BPP", "BPBP")


class ButterflyChain(nn.Module):
    """A product such as ``"BPBP"`` of learnable permutations and butterflies, optional ``Re``.

    The structure string is in product notation, so its *last* letter is applied first.
    """

    def __init__(self, n: int, structure: str = "BP", *, complex: bool = True, real_output: bool = False,
                 tied: bool = False, increasing_stride: bool = True, share_logits: bool = False,
                 dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu",
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        if not structure or set(structure) - {"B", "P"}:
            raise ValueError(f"structure {structure!r} must be letters B and P (e.g. BP, BPP, BPBP)")
        self.n, self.structure, self.real_output = n, structure, real_output
        parts: list[nn.Module] = []
        for letter in reversed(structure):
            if letter == "P":
                parts.append(LearnablePermutation(n, share_logits=share_logits, dtype=dtype, device=device,
                                                  generator=generator))
            else:
                parts.append(Butterfly(n, complex=complex, tied=tied, increasing_stride=increasing_stride,
                                       dtype=dtype, device=device, generator=generator))
        self.parts = nn.ModuleList(parts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``y = M x`` along the last axis (relaxed permutations)."""
        for part in self.parts:
            x = part(x)
        return x.real if self.real_output and x.is_complex() else x

    def matrix_t(self) -> torch.Tensor:
        """``M^T`` (row j is ``M e_j``): the model applied to the identity, one pass."""
        param = next(self.parameters())
        eye = torch.eye(self.n, dtype=param.dtype, device=param.device)
        return self(eye)

    def permutations(self) -> list[LearnablePermutation]:
        """The learnable permutations, in application order."""
        return [p for p in self.parts if isinstance(p, LearnablePermutation)]

    def hard_choices(self) -> list[np.ndarray]:
        """Rounded choices of every learnable permutation, in application order."""
        return [p.hard_choices() for p in self.permutations()]

    def to_steps(self, choices: Sequence[np.ndarray] | None = None) -> list[Step]:
        """Canonical steps with rounded permutations (or the given ``choices``), adjacent ones merged."""
        choices = list(self.hard_choices() if choices is None else choices)
        steps: list[Step] = []
        for part in self.parts:
            if isinstance(part, LearnablePermutation):
                steps.append(Step("permutation", part.hard_permutation(choices.pop(0))))
            else:
                steps += part.to_steps()
        if self.real_output:
            steps.append(Step("real"))
        return merge_permutations(steps)


def merge_permutations(steps: list[Step]) -> list[Step]:
    """Fold each run of consecutive permutation steps into one step (same product, fewer gathers)."""
    out: list[Step] = []
    for step in steps:
        if step.kind == "permutation" and out and out[-1].kind == "permutation":
            out[-1] = Step("permutation", compose_permutations(out[-1].data, step.data))
        else:
            out.append(step)
    return out


def steps_to_modules(steps: Sequence[Step], device: str | torch.device = "cpu") -> nn.Sequential:
    """A module applying canonical steps; butterflies become trainable :class:`Butterfly` modules."""
    mods: list[nn.Module] = []
    for step in steps:
        build = STEP_MODULES.get(kind_of(step.kind).name)
        if build is None:
            raise ValueError(f"step kind {step.kind!r} has no torch module yet ({', '.join(STEP_MODULES)} have)")
        mods.append(build(step.data, device))
    return nn.Sequential(*mods)


class _Diagonal(nn.Module):
    """A trainable diagonal step (complex held as a real pair, like the twiddles)."""

    def __init__(self, d: np.ndarray, device: str | torch.device) -> None:
        super().__init__()
        t = torch.as_tensor(np.asarray(d))
        self.complex = t.is_complex()
        self.d = nn.Parameter((torch.view_as_real(t) if self.complex else t).clone().to(device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = torch.view_as_complex(self.d) if self.complex else self.d
        return x * d

    def to_step(self) -> Step:
        d = torch.view_as_complex(self.d) if self.complex else self.d
        return Step("diagonal", d.detach().cpu().numpy().copy())


class Rank2(nn.Module):
    """A trainable ``rank2`` step: real stages ``(L, N/2, 2, 2, 2, 2)`` in the canonical layout,
    applied by :func:`bfly_cli.torch_ops.rank2_multiply_torch` (the reference's twin), so a file's
    data loads into it unchanged. Complex input runs its real and imaginary parts through the same
    real stages; input is promoted with the stages' dtype first, as ``Factors.apply`` does."""

    def __init__(self, stages: np.ndarray | torch.Tensor, device: str | torch.device = "cpu") -> None:
        super().__init__()
        t = torch.as_tensor(np.asarray(stages))
        if t.is_complex() or t.dim() != 6 or t.shape[2:] != (2, 2, 2, 2):
            raise ValueError(f"rank2 stages must be real (L, N/2, 2, 2, 2, 2), not {tuple(t.shape)} {t.dtype}")
        self.stages = nn.Parameter(t.clone().to(device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rank2_multiply_torch(self.stages, x.to(torch.promote_types(x.dtype, self.stages.dtype)))

    def to_step(self) -> Step:
        return Step("rank2", self.stages.detach().cpu().numpy().copy())

    def extra_repr(self) -> str:
        return f"n={2 * self.stages.shape[1]}, levels={self.stages.shape[0]}"


def modules_to_steps(module: nn.Module) -> list[Step]:
    """Inverse of :func:`steps_to_modules` (current parameter values, on the CPU).

    Takes the ``nn.Sequential`` of step modules, or a module that knows its steps (``to_steps``:
    :class:`~bfly_cli.torch_linear.ButterflyLinear`, :class:`ButterflyChain` with its permutations
    rounded, :class:`Butterfly`). Every child of a sequence must be one of the step modules:
    anything else raises rather than being read as some step kind it is not.
    """
    sequence = isinstance(module, (nn.Sequential, nn.ModuleList))
    if not sequence and callable(getattr(module, "to_steps", None)):
        return module.to_steps()
    if not sequence:
        raise ValueError(f"module {type(module).__name__} is not a bfly step module or a sequence of them")
    steps: list[Step] = []
    for mod in module:
        if isinstance(mod, Butterfly):
            steps += mod.to_steps()  # a decreasing-stride or multi-block module gives several steps
        elif isinstance(mod, _STEP_MODULE_TYPES):
            steps.append(mod.to_step())
        else:
            raise ValueError(f"module {type(mod).__name__} is not a bfly step module")
    return steps


def from_file(path: str, *, bias: bool = False, device: str | torch.device | None = None,
              dtype: torch.dtype | None = None) -> nn.Module:
    """A factor file as one trainable ``nn.Linear``-shaped layer
    (:class:`~bfly_cli.torch_linear.ButterflyLinear`) equal to the file's matrix: ``layer(x)`` is
    ``x @ M.T`` for ``x`` of shape ``(..., N)``. The file is read and checked by ``bfly_cli.load``."""
    from .h5format import load
    from .torch_linear import ButterflyLinear

    return ButterflyLinear.from_factors(load(path), bias=bias, device=device, dtype=dtype)


def _butterfly_module(data: np.ndarray, device: str | torch.device) -> nn.Module:
    return Butterfly.from_twiddles(data, device=device)


def _real_module(data: None, device: str | torch.device) -> nn.Module:
    return RealPart()


# The torch module of every registered step kind (bfly_cli.step_kinds), keyed by kind.
STEP_MODULES: dict[str, Callable[[np.ndarray | None, str | torch.device], nn.Module]] = {
    "permutation": FixedPermutation, "butterfly": _butterfly_module, "diagonal": _Diagonal,
    "real": _real_module, "rank2": Rank2,
}
_STEP_MODULE_TYPES = (FixedPermutation, RealPart, _Diagonal, Rank2)
