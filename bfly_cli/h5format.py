"""The bfly factor file: HDF5, format version 1 (specified in ``docs/file-format.md``).

Root attributes carry the metadata (``format = "bfly.factors"``, ``format_version = 1``, the
transform, sizes, errors, provenance; dicts and lists as JSON text, encoded and decoded by
:mod:`bfly_cli.metadata`); groups ``/steps/0``, ``/steps/1``, ... each carry an
attribute ``kind`` and, except ``real``, a dataset ``data``. Readers need only h5py and numpy.

Writes are atomic (a temporary file in the target directory, fsynced, then renamed), and an
existing file is never replaced unless ``force`` is given. Loading validates everything and turns
any problem into one :class:`~bfly_cli.errors.FormatError` line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from . import metadata
from .errors import BflyError, FormatError
from .safe_write import atomic_write, check_writable  # noqa: F401  (re-exported: the historical home)
from .factors import Factors, Step
from .step_kinds import KINDS

FORMAT_NAME = "bfly.factors"
FORMAT_VERSION = 1
REQUIRED_ATTRS = metadata.REQUIRED  # the keys registered as required, in the documented order


def save(factors: Factors, path: str | Path, force: bool = False) -> Path:
    """Write ``factors`` (with its ``meta``) to ``path`` atomically."""
    return atomic_write(path, lambda tmp: _write(factors, tmp), force=force)


def _write(factors: Factors, tmp: str) -> None:
    """Build the file in memory, then write its bytes with plain Python I/O: HDF5's own writes to a
    full disk crash the process (SIGSEGV) instead of raising, while Python's raise an OSError that
    ``atomic_write`` turns into one line, removing the temp. A factor file is O(N log N) numbers."""
    import io

    import h5py

    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as handle:
        for key, value in _root_attrs(factors).items():
            handle.attrs[key] = value
        steps = handle.create_group("steps")
        for k, step in enumerate(factors.steps):
            group = steps.create_group(str(k))
            group.attrs["kind"] = step.kind
            if step.data is not None:
                group.create_dataset("data", data=step.data)
    with open(tmp, "wb") as out:
        out.write(buffer.getbuffer())


def _root_attrs(factors: Factors) -> dict[str, Any]:
    """The metadata encoded by :func:`bfly_cli.metadata.encode_attrs`, with the format's own keys
    first and the facts the steps determine (n, structure, dtype) taken from the steps."""
    attrs: dict[str, Any] = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION}
    attrs.update(metadata.encode_attrs(factors.meta))
    attrs["n"] = factors.n
    attrs["structure"] = factors.structure
    attrs["dtype"] = str(factors.dtype)
    return attrs


def load(path: str | Path) -> Factors:
    """Read and fully validate a factor file; any problem raises :class:`FormatError`."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise BflyError(f"factor file {str(path)!r} does not exist")
    try:
        handle = h5py.File(path, "r")
    except OSError:
        raise FormatError(f"{str(path)!r} is not a readable HDF5 file (truncated, corrupt or another format)") from None
    try:
        with handle:
            meta = _read_meta(handle, path)
            steps = _read_steps(handle, path)
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise FormatError(f"{str(path)!r} is damaged: {exc}") from None
    try:
        factors = Factors(int(meta["n"]), steps, meta)
    except FormatError as exc:
        raise FormatError(f"{str(path)!r}: {exc}") from None
    if factors.structure != meta.get("structure"):
        raise FormatError(f"{str(path)!r}: attribute structure={meta.get('structure')!r} does not match its steps ({factors.structure})")
    return factors


def _read_meta(handle, path: Path) -> dict[str, Any]:
    attrs = {key: _plain(value) for key, value in handle.attrs.items()}
    if attrs.get("format") != FORMAT_NAME:
        raise FormatError(f"{str(path)!r} is not a bfly factor file (format attribute is {attrs.get('format')!r})")
    version = attrs.get("format_version")
    if not isinstance(version, int):
        raise FormatError(f"{str(path)!r} has no valid format_version")
    if version > FORMAT_VERSION:
        raise FormatError(f"{str(path)!r} uses format_version {version}, newer than this bfly reads ({FORMAT_VERSION}); upgrade bfly")
    if version < 1:
        raise FormatError(f"{str(path)!r} has invalid format_version {version}")
    missing = [key for key in REQUIRED_ATTRS if key not in attrs]
    if missing:
        raise FormatError(f"{str(path)!r} lacks required attributes: {', '.join(missing)}")
    return metadata.decode(attrs)


def _read_steps(handle, path: Path) -> list[Step]:
    import h5py

    group = handle.get("steps")
    if not isinstance(group, h5py.Group):
        raise FormatError(f"{str(path)!r} has no /steps group")
    names = sorted(group.keys(), key=lambda s: int(s) if s.isdigit() else -1)
    if names != [str(k) for k in range(len(names))]:
        raise FormatError(f"{str(path)!r}: /steps must hold groups 0, 1, 2, ... (found {', '.join(names)})")
    steps = []
    for name in names:
        item = group[name]
        kind = _plain(item.attrs.get("kind"))
        if kind not in KINDS:
            raise FormatError(f"{str(path)!r}: /steps/{name} has unknown kind {kind!r}")
        data = item["data"][()] if "data" in item else None
        if KINDS[kind].has_data and data is None:
            raise FormatError(f"{str(path)!r}: /steps/{name} ({kind}) has no data dataset")
        steps.append(Step(kind, data))
    return steps


def _plain(value: Any) -> Any:
    """HDF5 attribute values as plain Python (bytes decoded, numpy scalars unwrapped)."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value
