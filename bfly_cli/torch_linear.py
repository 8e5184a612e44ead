"""``ButterflyLinear``: factors as an ``nn.Linear``-shaped torch layer, and the way back to a file.

One call turns a factor file (:func:`bfly_cli.torch_butterfly.from_file`) or a
:class:`~bfly_cli.factors.Factors` (:meth:`~bfly_cli.factors.Factors.to_torch`) into a trainable
layer equal to the factors; :meth:`ButterflyLinear.to_factors` turns it back into factors whose
``save`` file ``load``, ``bfly show`` and ``bfly verify`` accept. The layer holds the same step
modules :func:`~bfly_cli.torch_butterfly.steps_to_modules` builds (butterflies, diagonals and
rank-2 stages trainable, permutations fixed), so nothing here multiplies on its own: the steps'
torch twins do, and they are tested against the numpy reference.

Metadata the layer cannot know (what it was trained towards, how long) is recorded as unknown
(:func:`bfly_cli.metadata.completed`), never carried over from the file it came from: training
changed the matrix, so the file's errors no longer describe it. Given a target, the errors are
measured again, as ``bfly learn`` measures them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from . import metadata
from .errors import BflyError
from .factors import Factors, Step, dense_real_params
from .layout import bit_reversal, log2_exact
from .step_kinds import kind_of
from .targets import Target
from .torch_butterfly import Butterfly, FixedPermutation, RealPart, modules_to_steps, steps_to_modules
from .torch_ops import numpy_dtype, torch_dtype

__all__ = ["ButterflyLinear", "LayerError", "cast_steps", "trained_meta"]


class LayerError(BflyError, ValueError):
    """Bad arguments for the layer: one line naming the problem and the fix (a ``ValueError`` too,
    what torch code expects from a module's arguments)."""


class ButterflyLinear(nn.Module):
    """``y = x @ M.T + b`` along the last axis, with ``M`` an N x N chain of butterfly steps.

    Built like ``nn.Linear``: ``ButterflyLinear(n)``, ``ButterflyLinear(n, n, bias=False,
    device=..., dtype=...)`` is a fresh, randomly initialized layer of ``structure`` (letters
    ``B``, a random butterfly, and ``P``, the fixed bit-reversal permutation; product notation,
    the last letter acts first: ``"BP"`` is the FFT's shape). ``out_features`` must equal
    ``in_features`` (a power of two). ``bias`` defaults to True, as for ``nn.Linear``.

    :meth:`from_factors`, :func:`bfly_cli.torch_butterfly.from_file` and ``Factors.to_torch()``
    give the layer of learned factors instead: bias off by default, and when asked for it starts
    at zero, so the layer starts equal to the factors. ``layers`` (an ``nn.Sequential`` of step
    modules) is how they pass them in.
    """

    def __init__(self, in_features: int, out_features: int | None = None, bias: bool = True, *,
                 structure: str | None = "BP", device: str | torch.device | None = None,
                 dtype: torch.dtype | None = None,
                 generator: torch.Generator | None = None, layers: nn.Sequential | None = None) -> None:
        super().__init__()
        n = _checked_features(in_features, out_features)
        self.in_features = self.out_features = n
        dtype = torch.get_default_dtype() if dtype is None else dtype
        fresh = layers is None
        if fresh:
            layers = _fresh_layers(n, structure, device, dtype, generator)
        self.layers = layers.to(device) if device is not None else layers
        self.source_meta: dict[str, Any] = {}
        self._fallback_dtype = _real_of(dtype)
        if bias:
            self.bias = nn.Parameter(self._initial_bias(fresh, generator))
        else:
            self.register_parameter("bias", None)

    @classmethod
    def from_factors(cls, factors: Factors, *, bias: bool = False, device: str | torch.device | None = None,
                     dtype: torch.dtype | None = None) -> "ButterflyLinear":
        """The layer equal to ``factors`` (its steps' torch modules), on ``device``; ``dtype`` sets
        the parameters' precision (float32/float64; a complex dtype makes butterflies and
        diagonals complex), default the factors' own. ``source_meta`` keeps the factors' metadata."""
        steps = cast_steps(factors.steps, dtype)
        layers = steps_to_modules(steps, "cpu" if device is None else device)
        real = _real_of(dtype) if dtype is not None else _real_of(torch_dtype(Factors(factors.n, steps).dtype))
        layer = cls(factors.n, bias=bias, structure=None, device=device, dtype=real, layers=layers)
        layer.source_meta = dict(factors.meta)
        return layer

    # ---- the linear map --------------------------------------------------------------------

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x @ M.T + b`` for ``x`` of shape ``(..., N)``, like ``nn.Linear``."""
        if x.shape[-1] != self.in_features:
            raise LayerError(f"input's last axis has length {x.shape[-1]}; "
                             f"this layer takes {self.in_features} features")
        y = self._matrix_part(x)
        return y if self.bias is None else y + self.bias

    def _matrix_part(self, x: torch.Tensor) -> torch.Tensor:
        """``M x`` along the last axis. A chain with a ``real`` step is linear over the reals only:
        complex input runs as its real and imaginary parts, as ``Factors.apply`` does."""
        if x.is_complex() and any(isinstance(m, RealPart) for m in self.layers):
            re, im = self.layers(x.real.contiguous()), self.layers(x.imag.contiguous())
            return torch.complex(re, im) if not re.is_complex() else re + 1j * im
        return self.layers(x)

    @property
    def weight(self) -> torch.Tensor:
        """``M`` as a dense ``(out_features, in_features)`` tensor, computed (N applications of the
        steps) and differentiable: ``F.linear(x, layer.weight, layer.bias)`` equals ``layer(x)``."""
        eye = torch.eye(self.in_features, dtype=self._real_dtype(), device=self._device())
        return self._matrix_part(eye).transpose(0, 1)

    def _real_dtype(self) -> torch.dtype:
        """The real precision of the parameters (the one given at construction if there are none)."""
        for param in self.layers.parameters():
            return _real_of(param.dtype)
        return self._fallback_dtype

    def _device(self) -> torch.device:
        for tensor in (*self.layers.parameters(), *self.layers.buffers()):
            return tensor.device
        return torch.device("cpu")

    def _initial_bias(self, fresh: bool, generator: torch.Generator | None) -> torch.Tensor:
        """Zeros for loaded factors; for a fresh layer ``nn.Linear``'s uniform(-1/sqrt(N), 1/sqrt(N))
        (real and imaginary parts each, scaled by 1/sqrt(2), for a complex output)."""
        with torch.no_grad():
            out = self._matrix_part(torch.zeros(1, self.in_features, dtype=self._real_dtype(), device=self._device()))
        if not fresh:
            return torch.zeros(self.out_features, dtype=out.dtype, device=out.device)
        bound = 1 / math.sqrt(self.in_features)
        draw = torch.rand((2, self.out_features), generator=generator, dtype=self._real_dtype()) * 2 - 1
        draw = draw.to(out.device) * bound
        return torch.complex(draw[0], draw[1]) / math.sqrt(2) if out.dtype.is_complex else draw[0]

    # ---- back to factors -------------------------------------------------------------------

    def to_steps(self, *, drop_bias: bool = False) -> list[Step]:
        """The canonical steps of ``M`` (current values, on the CPU). A nonzero bias is not a step:
        refused unless ``drop_bias`` says the caller keeps it."""
        if self.bias is not None and not drop_bias and bool(torch.any(self.bias.detach() != 0)):
            raise LayerError("this layer's bias is not part of its factors (a factor file holds M only); "
                             "keep layer.bias yourself (torch.save) and pass drop_bias=True, or use bias=False")
        return modules_to_steps(self.layers)

    def to_factors(self, *, target: np.ndarray | Target | str | None = None, meta: dict[str, Any] | None = None,
                   drop_bias: bool = False) -> Factors:
        """:class:`Factors` of ``M`` whose ``bfly_cli.save`` file ``load`` accepts.

        ``target``: a matrix or a ``bfly_cli.resolve(...)`` target to measure the errors against
        (as ``bfly learn`` does; a named transform or matrix file lets ``bfly verify`` check them),
        or ``"source"``: the target of the file the layer came from. Without one, the errors are
        recorded as unknown. ``meta`` adds keys (measured errors always win over given ones).
        """
        given = dict(meta or {})
        if isinstance(target, str):
            target, given = self._source_target(target), {"seed": self.source_meta.get("seed"), **given}
        factors = Factors(self.in_features, self.to_steps(drop_bias=drop_bias))
        factors.meta = trained_meta(factors, target, given)
        return factors

    def _source_target(self, name: str) -> Target:
        """The target recorded in :attr:`source_meta` (the file this layer was loaded from)."""
        from .targets import target_from_meta

        if name != "source":
            raise LayerError(f"target {name!r}: give 'source', a matrix, or a bfly_cli.resolve(...) target")
        if not self.source_meta:
            raise LayerError("this layer was not loaded from factors; "
                             "give target=MATRIX or a bfly_cli.resolve(...) target")
        try:
            return target_from_meta(self.source_meta, self.source_meta.get("source"))
        except BflyError as exc:
            raise LayerError(f"cannot rebuild the target of the factors this layer came from: {exc}") from None

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


def trained_meta(factors: Factors, target: np.ndarray | Target | None, given: dict[str, Any]) -> dict[str, Any]:
    """Metadata of factors trained outside ``learn``: what the steps say, the errors against
    ``target`` when one is given (else unknown), and :func:`metadata.completed` for the rest."""
    facts = {"n": factors.n, "dtype": str(factors.dtype), "structure": factors.structure,
             "params": factors.n_params(), "real_params": factors.n_real_params()}
    base = {"solver": "torch", "command": "ButterflyLinear.to_factors()"}
    if target is None:
        return metadata.completed({**base, **given, **facts})
    matrix = target.matrix if isinstance(target, Target) else np.asarray(target)
    if matrix.shape != (factors.n, factors.n):
        raise LayerError(f"target has shape {matrix.shape}; these factors are {factors.n} x {factors.n}")
    return metadata.completed({**base, **_provenance(target), **given, **facts, **_measured(factors, matrix)})


def _provenance(target: np.ndarray | Target) -> dict[str, Any]:
    """How ``bfly verify`` rebuilds the target: transform and options, or matrix file and hash
    (the keys ``bfly learn`` records); a bare matrix is recorded as ``matrix`` (not rebuildable)."""
    if not isinstance(target, Target):
        return {"transform": "matrix"}
    if target.source:
        return {"transform": "file", "source": target.source, "source_sha256": target.sha256}
    return {"transform": target.name, "transform_options": target.options}


def _measured(factors: Factors, matrix: np.ndarray) -> dict[str, Any]:
    """The errors and verdict ``learn`` records, measured the same way (:mod:`bfly_cli.metrics`)."""
    from .metrics import error_report_blocks, exactness, input_precision, is_exact, working_precision

    errors = error_report_blocks(factors.dense_blocks(), matrix)  # as learn(): no dense copy beside the matrix
    precision = input_precision(matrix)
    wording = exactness(errors["rel_error"], precision, working_precision(str(factors.dtype)))
    return {**errors, "exact": is_exact(wording), "exactness": wording, "input_precision": precision,
            "dense_real_params": dense_real_params(matrix)}


def cast_steps(steps: list[Step], dtype: torch.dtype | None) -> list[Step]:
    """``steps`` with their numbers in ``dtype``'s precision (None: unchanged). A complex dtype
    makes butterflies and diagonals complex; complex data stay complex under a real dtype (the
    precision changes, the values are kept); ``rank2`` stays real; permutations are indices."""
    if dtype is None:
        return list(steps)
    want = _numpy_dtype(dtype)
    real, complex_ = np.finfo(want).dtype, np.result_type(np.finfo(want).dtype, np.complex64)
    out = []
    for step in steps:
        if step.data is None or kind_of(step.kind).indices:
            out.append(step)
            continue
        keep_real = step.kind == "rank2" or (want.kind != "c" and not np.iscomplexobj(step.data))
        out.append(Step(step.kind, step.data.astype(real if keep_real else complex_)))
    return out


def _fresh_layers(n: int, structure: str | None, device: str | torch.device | None, dtype: torch.dtype,
                  generator: torch.Generator | None) -> nn.Sequential:
    """Random step modules of ``structure`` (B: butterfly, P: bit reversal), the last letter first."""
    if not structure or set(structure) - {"B", "P"}:
        raise LayerError(f"structure {structure!r}: use the letters B (butterfly) and P (bit reversal), e.g. 'BP'")
    complex_ = _numpy_dtype(dtype).kind == "c"
    device = "cpu" if device is None else device
    mods: list[nn.Module] = []
    for letter in reversed(structure):
        if letter == "P":
            mods.append(FixedPermutation(bit_reversal(n), device))
        else:
            mods.append(Butterfly(n, complex=complex_, dtype=_real_of(dtype), device=device, generator=generator))
    return nn.Sequential(*mods)


def _checked_features(in_features: int, out_features: int | None) -> int:
    """N: in and out features equal (the factors are square) and a power of two >= 2."""
    if out_features is not None and out_features != in_features:
        raise LayerError(f"out_features {out_features} != in_features {in_features}: butterfly factors are square; "
                         f"use equal sizes (pad or slice around the layer)")
    integer = isinstance(in_features, (int, np.integer)) and not isinstance(in_features, bool)
    if not integer or log2_exact(int(in_features)) < 1:
        raise LayerError(f"in_features {in_features!r} must be a power of two >= 2 (e.g. 256)")
    return int(in_features)


def _numpy_dtype(dtype: torch.dtype) -> np.dtype:
    try:
        return numpy_dtype(dtype)
    except ValueError as exc:
        raise LayerError(str(exc)) from None


def _real_of(dtype: torch.dtype) -> torch.dtype:
    """The real dtype of a complex one (float dtypes unchanged)."""
    return {torch.complex64: torch.float32, torch.complex128: torch.float64}.get(dtype, dtype)
