"""The fixed value sets of CLI options, as ``Literal`` types: typer then lists them in ``--help``
(``<auto|hierarchical|...>``), completes them in the shell and refuses anything else while parsing.

Kept free of numpy and torch so ``bfly --help`` stays instant; each tuple mirrors the library's own
list (``tests/test_cli_choices.py`` checks they agree, so neither can drift).
"""

from __future__ import annotations

from typing import Literal

from ..solvers.registry import SOLVER_NAMES

LEARN_DTYPES = ("float64", "float32")  # bfly_cli.learning.DTYPES
APPLY_DTYPES = ("float32", "float64", "complex64", "complex128")  # what the kernel plans for
EXPORT_FORMATS = ("npz", "pt", "mat", "json")  # bfly_cli.export.FORMATS
NORMS = ("backward", "ortho", "forward", "paper")  # bfly_cli.transforms.NORMS
MODELS = ("BP", "BPP", "BPBP")  # bfly_cli.torch_butterfly.MODELS
DEVICES = ("cpu", "cuda")  # completion only: cuda:N is accepted too (bfly_cli.devices)

Solver = Literal[tuple(SOLVER_NAMES)]  # type: ignore[valid-type]
LearnDtype = Literal[LEARN_DTYPES]  # type: ignore[valid-type]
ApplyDtype = Literal[APPLY_DTYPES]  # type: ignore[valid-type]
ExportFormat = Literal[EXPORT_FORMATS]  # type: ignore[valid-type]
Norm = Literal[NORMS]  # type: ignore[valid-type]
Model = Literal[MODELS]  # type: ignore[valid-type]


def complete_device(incomplete: str) -> list[str]:
    """Shell completion for ``--device`` (free text, since ``cuda:N`` names one GPU of several)."""
    return [d for d in DEVICES if d.startswith(incomplete)]
