"""Resolving what the user asked to factor: a registered transform or a matrix file.

A :class:`Target` records everything needed to rebuild the same matrix later (``verify`` uses
:func:`target_from_meta`): the transform name and its options, or the source file and the sha256
of its values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import BflyError
from .matrix_io import load_matrix, looks_like_path, matrix_sha256
from .sizes import check_memory, check_size


@dataclass
class Target:
    """A dense target matrix and how it was made."""

    name: str  # transform name, or the file's stem for a matrix file
    matrix: np.ndarray
    options: dict[str, Any] = field(default_factory=dict)
    source: str | None = None  # matrix file path, when the target came from a file
    sha256: str | None = None

    @property
    def n(self) -> int:
        return self.matrix.shape[0]


def resolve(name_or_path: str, n: int | None = None, **options: Any) -> Target:
    """Build the target named ``name_or_path`` at size ``n``, or load it from a matrix file."""
    from bfly_cli import transforms

    if looks_like_path(name_or_path) or (Path(name_or_path).exists() and name_or_path not in transforms.names()):
        return _from_file(name_or_path, n, options)
    try:
        transform = transforms.get(name_or_path)
    except transforms.UnknownTransform as exc:
        raise BflyError(str(exc)) from None
    if n is None:
        raise BflyError(f"transform {name_or_path!r} needs a size: add --n N (a power of two, e.g. --n 512)")
    check_size(n)
    check_memory(n, complex_=True)
    try:
        given = transform.check(**options)  # canonical values, recorded so verify rebuilds the same matrix
        matrix = transform.build(n, **given)
    except (transforms.TransformOptionError, ValueError) as exc:
        raise BflyError(str(exc)) from None
    return Target(name_or_path, matrix, given)


def _from_file(path: str, n: int | None, options: dict[str, Any]) -> Target:
    used = sorted(k for k, v in options.items() if v is not None and k != "seed")
    if used:
        raise BflyError(f"options {', '.join('--' + k for k in used)} apply to named transforms, not to a matrix file")
    matrix = load_matrix(path)
    if n is not None and n != matrix.shape[0]:
        raise BflyError(f"{path!r} holds a {matrix.shape[0]} x {matrix.shape[0]} matrix but --n {n} was given; drop --n or fix it")
    return Target(Path(path).stem, matrix, {}, source=str(path), sha256=matrix_sha256(matrix))


def target_from_meta(meta: dict[str, Any], source: str | None = None) -> Target:
    """Rebuild the target a factor file was learned from (named transform or source file)."""
    if meta.get("source") is not None or meta.get("source_sha256") is not None:
        path = source or meta.get("source")
        target = _from_file(path, int(meta["n"]), {})
        if meta.get("source_sha256") and target.sha256 != meta["source_sha256"]:
            raise BflyError(f"matrix file {path!r} changed since the factors were learned (sha256 differs)")
        return target
    return resolve(str(meta["transform"]), int(meta["n"]), **dict(meta.get("transform_options") or {}))
