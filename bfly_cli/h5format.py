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
from .input_files import check_input_file, native
from .sizes import MAX_N, available_bytes
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
    first and the facts the steps determine (n, structure, dtype) taken from the steps. Required
    keys the factors' ``meta`` lacks (hand-built, trained, derived factors) are recorded as unknown
    (:func:`bfly_cli.metadata.completed`), so every valid ``Factors`` saves to a file ``load`` accepts."""
    attrs: dict[str, Any] = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION}
    attrs.update(metadata.encode_attrs(metadata.completed(factors.meta)))
    attrs["n"] = factors.n
    attrs["structure"] = factors.structure
    attrs["dtype"] = str(factors.dtype)
    return attrs


def load(path: str | Path) -> Factors:
    """Read and fully validate a factor file; any problem raises :class:`FormatError`.

    The file is untrusted. Every attribute's type is checked (:mod:`bfly_cli.metadata`), every
    dataset's declared shape, dtype and storage before its data are read (a 13 KB file can declare
    gigabytes), and any error h5py or the HDF5 library raises on a damaged file (bit flips, link
    loops) becomes one line instead of a traceback.
    """
    import h5py

    path = check_input_file(path, "factor file", "give a .h5 file written by 'bfly learn'")
    label = repr(str(path))
    try:
        handle = h5py.File(path, "r")
    except _HDF5_ERRORS:
        raise FormatError(f"{label} is not a readable HDF5 file (truncated, corrupt or another format)") from None
    try:
        with handle:
            meta = _read_meta(handle, path)
            steps = _read_steps(handle, path, _checked_n(meta, label))
    except BflyError:
        raise
    except _HDF5_ERRORS as exc:
        raise FormatError(f"{label} is damaged ({_first_line(exc)}); learn it again or restore a copy") from None
    try:
        factors = Factors(meta["n"], steps, meta)
    except FormatError as exc:
        raise FormatError(f"{label}: {exc}") from None
    if factors.structure != meta.get("structure"):
        raise FormatError(f"{label}: attribute structure={meta.get('structure')!r} does not match its steps ({factors.structure})")
    return factors


# What h5py raises for a damaged file: HDF5 library errors surface as any of these.
_HDF5_ERRORS = (OSError, RuntimeError, KeyError, ValueError, TypeError, IndexError, OverflowError, AttributeError)
_MAX_ATTR_BYTES = 1 << 20  # an attribute is metadata: anything larger is a crafted file


def _read_meta(handle, path: Path) -> dict[str, Any]:
    """The root attributes, size-checked before reading and type-checked after (metadata.decode)."""
    attrs = {key: _read_attr(handle.attrs, key, path) for key in handle.attrs.keys()}
    if not isinstance(attrs.get("format"), str) or attrs["format"] != FORMAT_NAME:
        raise FormatError(f"{str(path)!r} is not a bfly factor file (format attribute is {metadata.short_repr(attrs.get('format'))})")
    version = attrs.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise FormatError(f"{str(path)!r} has no valid format_version")
    if version > FORMAT_VERSION:
        raise FormatError(f"{str(path)!r} uses format_version {version}, newer than this bfly reads ({FORMAT_VERSION}); upgrade bfly")
    if version < 1:
        raise FormatError(f"{str(path)!r} has invalid format_version {version}")
    missing = [key for key in REQUIRED_ATTRS if key not in attrs]
    if missing:
        raise FormatError(f"{str(path)!r} lacks required attributes: {', '.join(missing)}")
    try:
        return metadata.decode(attrs)
    except ValueError as exc:  # metadata.BadMetadata, or a registered JSON key that is not JSON
        raise FormatError(f"{str(path)!r}: {exc}") from None


def _read_attr(attrs, name: str, path: Path) -> Any:
    """One attribute as plain Python, its declared size checked before h5py allocates for it."""
    ident = attrs.get_id(name)
    count = 1 if ident.shape is None else int(np.prod(ident.shape, dtype=object))
    if count * ident.dtype.itemsize > _MAX_ATTR_BYTES:
        raise FormatError(f"{str(path)!r}: attribute {name!r} declares {ident.shape} values, too large for metadata")
    return _plain(attrs[name])


def _checked_n(meta: dict[str, Any], label: str) -> int:
    """``n`` (already an int >= 2, metadata.decode saw to that): a power of two bfly can hold."""
    n = meta["n"]
    if n & (n - 1) or n > MAX_N:
        raise FormatError(f"{label}: attribute n = {n} is not a power of two between 2 and {MAX_N}")
    return n


def _read_steps(handle, path: Path, n: int) -> list[Step]:
    """Every step's kind and data: links, shapes, dtypes and total size checked, then read."""
    group = _hard_member(handle, "steps", path, "/steps")
    names = sorted(group.keys(), key=lambda s: int(s) if s.isdigit() else -1)
    if names != [str(k) for k in range(len(names))]:
        raise FormatError(f"{str(path)!r}: /steps must hold groups 0, 1, 2, ... (found {', '.join(names[:8])})")
    sources = [_step_source(group, name, n, path) for name in names]
    declared = sum(d.size * d.dtype.itemsize for _, d in sources if d is not None)
    if declared > available_bytes():
        raise FormatError(f"{str(path)!r}: its steps declare {declared / 2**30:.1f} GiB of data, more than the memory available")
    return [Step(kind, None if d is None else _normalized(d[()], KINDS[kind], path)) for kind, d in sources]


def _step_source(group, name: str, n: int, path: Path):
    """``(kind, dataset or None)`` of step ``name``, checked against N without reading the data."""
    import h5py

    where = f"/steps/{name}"
    item = _hard_member(group, name, path, where)
    kind = _read_attr(item.attrs, "kind", path) if "kind" in item.attrs else None
    if not isinstance(kind, str) or kind not in KINDS:
        raise FormatError(f"{str(path)!r}: {where} has unknown kind {metadata.short_repr(kind)}; known: {', '.join(KINDS)}")
    spec = KINDS[kind]
    if "data" not in item:
        if spec.has_data:
            raise FormatError(f"{str(path)!r}: {where} ({kind}) has no data dataset")
        return kind, None
    if not spec.has_data:
        raise FormatError(f"{str(path)!r}: {where} ({kind}) must not carry data")
    data = item.get("data", getlink=True)
    if not isinstance(data, h5py.HardLink) or not isinstance(item["data"], h5py.Dataset):
        raise FormatError(f"{str(path)!r}: {where}/data is not a dataset stored in the file")
    _check_dataset(item["data"], spec, n, f"{str(path)!r}: {where} ({kind})")
    return kind, item["data"]


def _hard_member(parent, name: str, path: Path, where: str):
    """The group ``parent[name]``, refusing links (a soft link can loop; an external one leaves the file)."""
    import h5py

    link = parent.get(name, getlink=True)
    if link is None:
        raise FormatError(f"{str(path)!r} has no {where} group")
    if not isinstance(link, h5py.HardLink):
        raise FormatError(f"{str(path)!r}: {where} is a {type(link).__name__}, not a group stored in the file")
    member = parent[name]
    if not isinstance(member, h5py.Group):
        raise FormatError(f"{str(path)!r}: {where} is not a group")
    return member


def _check_dataset(dataset, spec, n: int, where: str) -> None:
    """Declared storage, shape and dtype of one step's data (free to ask: nothing is read)."""
    if dataset.is_virtual or dataset.external:
        raise FormatError(f"{where} keeps its data in other files; a factor file must hold its own data")
    expected = spec.shape(n)
    if dataset.shape != expected:
        raise FormatError(f"{where} has shape {dataset.shape}, expected {expected}")
    dtype = dataset.dtype
    if dtype.kind not in spec.dtype_kinds:
        need = "integers" if spec.indices else "floating-point numbers"
        raise FormatError(f"{where} must hold {need}, not {dtype}")
    if dtype.kind in "fc" and dtype.itemsize > (8 if dtype.kind == "f" else 16):
        raise FormatError(f"{where} holds {dtype} (extended precision), which bfly does not compute in; "
                          f"convert it to float64/complex128 with numpy and save it again")


def _normalized(data: np.ndarray, spec, path: Path) -> np.ndarray:
    """Data as every consumer expects it: native byte order, indices int64, float16 as float32.

    The kernel and torch refuse big-endian arrays and small index types; a permutation stored as
    uint8 or a big-endian int is still a permutation (checked after conversion by Factors).
    """
    data = native(np.asarray(data))
    if spec.indices:
        return data.astype(np.int64)
    if data.dtype == np.float16:
        return data.astype(np.float32)
    return data


def _plain(value: Any) -> Any:
    """HDF5 attribute values as plain Python (text decoded as UTF-8, invalid bytes replaced; numpy
    scalars unwrapped to Python's int, float, bool, complex, str). Arrays stay arrays (an unknown
    key passes through)."""
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, str):  # h5py keeps bytes that are not UTF-8 as surrogates, which cannot be printed
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.complexfloating):
        return complex(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _first_line(exc: BaseException) -> str:
    text = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
