"""Exporting factors to other containers (npz, pt, mat, json) and reading those exports back.

The HDF5 factor file stays the one source of truth; exports exist so that people can use learned
factors where h5py is not at hand (numpy-only code, torch training, MATLAB/Octave, a text editor).
Every format holds the same steps in the same canonical layout (``bfly_cli.factors``) plus the
file's metadata, and has a loader here so that each one is round-trip tested. The layouts are
specified in ``docs/file-format.md`` ("Export formats").

Writes go through :func:`bfly_cli.safe_write.atomic_write`: a temporary file in the target
directory renamed into place, never replacing an existing file without ``force``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import metadata
from .errors import BflyError, FormatError
from .factors import Factors, Step
from .safe_write import atomic_write
from .step_kinds import KINDS, STEP_KINDS, kind_of, placeholder

FORMATS = {"npz": ".npz", "pt": ".pt", "mat": ".mat", "json": ".json"}
EXPORT_VERSION = 1
JSON_MAX_N = 4096
JSON_BYTES_PER_NUMBER = 24  # about what repr() of a float64 plus separators takes
_STEP_NAME = re.compile(r"^step(\d+)_([a-z0-9]+)$")


def check_format(fmt: str) -> str:
    """The format name, or a one-line error listing the formats (before any work is done)."""
    if fmt not in FORMATS:
        raise BflyError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    return fmt


def default_output(source: str | Path, fmt: str) -> Path:
    """Next to the factor file, with the format's extension: ``runs/dft-64.h5`` -> ``runs/dft-64.npz``."""
    return Path(source).with_suffix(FORMATS[check_format(fmt)])


def check_json_size(factors: Factors, force_large: bool) -> None:
    """Refuse JSON above N = 4096: text costs ~24 bytes a number and parsers load it all at once."""
    if factors.n <= JSON_MAX_N or force_large:
        return
    numbers = sum(s.data.size * (2 if s.data.dtype.kind == "c" else 1) for s in factors.steps if s.data is not None)
    size = numbers * JSON_BYTES_PER_NUMBER / 2**20
    raise BflyError(f"N = {factors.n} is above {JSON_MAX_N} for JSON: the file would be about {size:,.0f} MiB of text, "
                    f"slow to write and parse; use --format npz (or mat/pt), or pass --force-large")


def export(factors: Factors, output: str | Path, fmt: str, *, force: bool = False, force_large: bool = False) -> Path:
    """Write ``factors`` to ``output`` in format ``fmt`` atomically; return the path written."""
    check_format(fmt)
    if fmt == "json":
        check_json_size(factors, force_large)
    return atomic_write(output, lambda tmp: _WRITERS[fmt](factors, tmp), force=force)


def load_export(path: str | Path) -> Factors:
    """Read any export back (format from the extension), validated like a factor file."""
    path = Path(path)
    fmt = {ext: name for name, ext in FORMATS.items()}.get(path.suffix.lower())
    if fmt is None:
        raise BflyError(f"{str(path)!r}: unknown export extension {path.suffix!r}; expected {', '.join(FORMATS.values())}")
    if not path.is_file():
        raise BflyError(f"export file {str(path)!r} does not exist")
    return _LOADERS[fmt](path)


# ---- shared pieces -----------------------------------------------------------------------------


def export_meta(factors: Factors) -> dict[str, Any]:
    """The file's metadata (:func:`bfly_cli.metadata.encode_document`) with the facts every reader
    needs made certain (n, structure, dtype)."""
    meta = metadata.encode_document(factors.meta)
    meta.update(n=factors.n, structure=factors.structure, dtype=str(factors.dtype))
    return meta


def _step_name(index: int, step: Step) -> str:
    return f"step{index}_{step.kind}"


def _steps_from_named(arrays: dict[str, np.ndarray], label: str, convert: Callable[[str, np.ndarray], np.ndarray]) -> list[Step]:
    """Steps from ``stepK_kind`` names (K = 0, 1, ... without gaps); ``convert`` undoes a layout."""
    found = {}
    for name, value in arrays.items():
        match = _STEP_NAME.match(name)
        if match:
            found[int(match.group(1))] = (match.group(2), value)
    if sorted(found) != list(range(len(found))) or not found:
        raise FormatError(f"{label}: step arrays must be named step0_<kind>, step1_<kind>, ... without gaps")
    steps = []
    for k in range(len(found)):
        kind, value = found[k]
        _check_kind(kind, k, label)
        steps.append(Step(kind, convert(kind, value) if KINDS[kind].has_data else None))
    return steps


def _check_kind(kind: Any, index: int, label: str) -> None:
    """One line naming the step and the known kinds, for a kind this bfly does not know."""
    if kind not in KINDS:
        raise FormatError(f"{label}: step {index} has unknown kind {kind!r}; known: {', '.join(STEP_KINDS)}")


def _factors(n: Any, steps: list[Step], meta: dict[str, Any], label: str) -> Factors:
    """Validate like a factor file: any bad shape, dtype or value becomes one FormatError line."""
    try:
        factors = Factors(int(n), steps, meta)
    except (FormatError, TypeError, ValueError) as exc:
        raise FormatError(f"{label}: {exc}") from None
    if meta.get("structure") not in (None, factors.structure):
        raise FormatError(f"{label}: metadata says structure {meta.get('structure')!r} but the steps are {factors.structure}")
    return factors


# ---- npz ---------------------------------------------------------------------------------------


def write_npz(factors: Factors, tmp: str) -> None:
    """``stepK_kind`` arrays (``real`` as an empty array) and ``meta``, a JSON string (0-d array)."""
    arrays = {_step_name(k, s): (s.data if s.data is not None else np.zeros(0)) for k, s in enumerate(factors.steps)}
    arrays["meta"] = np.array(json.dumps(export_meta(factors)))
    with open(tmp, "wb") as handle:  # a handle: np.savez would append .npz to the temporary name
        np.savez(handle, **arrays)


def load_npz(path: str | Path) -> Factors:
    """Read an npz export without pickles."""
    label = str(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except Exception as exc:  # zipfile/numpy raise many types for a damaged archive
        raise FormatError(f"{label!r} is not a readable npz archive: {exc}") from None
    meta = _json_field(arrays.get("meta"), label)
    steps = _steps_from_named(arrays, label, lambda kind, value: value)
    return _factors(meta.get("n"), steps, meta, label)


def _json_field(value: Any, label: str) -> dict[str, Any]:
    try:
        meta = json.loads(str(value.item() if isinstance(value, np.ndarray) else value))
    except (AttributeError, ValueError, TypeError):
        raise FormatError(f"{label}: missing or unreadable metadata (the JSON string 'meta')") from None
    if not isinstance(meta, dict):
        raise FormatError(f"{label}: metadata is not a JSON object")
    try:
        return metadata.decode(meta)
    except ValueError as exc:
        raise FormatError(f"{label}: unreadable metadata: {exc}") from None


# ---- pt ----------------------------------------------------------------------------------------

PT_FORMAT = "bfly.factors.pt"


def write_pt(factors: Factors, tmp: str) -> None:
    """The state dict of ``torch_butterfly.steps_to_modules(steps)``, with bfly's description in
    ``state_dict._metadata["bfly"]`` (where torch keeps per-module metadata: it survives
    ``torch.load(weights_only=True)`` and is ignored by ``load_state_dict``)."""
    import torch

    from .torch_butterfly import steps_to_modules

    unsupported = sorted({s.kind for s in factors.steps} - _pt_kinds())
    if unsupported:
        raise BflyError(f"pt export: torch_butterfly has no module for {', '.join(unsupported)} steps yet; "
                        f"use --format npz, mat or json")
    try:
        state = steps_to_modules(factors.steps).state_dict()
    except ValueError as exc:  # data a module refuses (complex rank2 stages: Rank2 is real)
        raise BflyError(f"pt export: {exc}; use --format npz, mat or json") from None
    state._metadata["bfly"] = {
        "format": PT_FORMAT, "format_version": EXPORT_VERSION, "n": factors.n,
        "kinds": [s.kind for s in factors.steps],
        "dtypes": [None if s.data is None else str(s.data.dtype) for s in factors.steps],
        "meta": json.dumps(export_meta(factors)),
    }
    import io

    buffer = io.BytesIO()  # torch's own file writer reports a full disk as a RuntimeError, Python's as OSError
    torch.save(state, buffer)
    with open(tmp, "wb") as handle:
        handle.write(buffer.getbuffer())


def load_pt(path: str | Path) -> Factors:
    """Read a pt export: rebuild the module chain from the recorded kinds, load the state dict
    into it (strictly, so the keys must match what ``steps_to_modules`` makes), read the steps out."""
    import torch

    from .torch_butterfly import modules_to_steps, steps_to_modules

    label = str(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged or foreign file
        raise FormatError(f"{label!r} is not a readable torch file: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    info = getattr(state, "_metadata", {}).get("bfly") if isinstance(state, dict) else None
    if not isinstance(info, dict) or info.get("format") != PT_FORMAT:
        raise FormatError(f"{label!r} is not a bfly pt export (no bfly entry in the state dict's _metadata)")
    n = int(info["n"])
    try:
        module = steps_to_modules(_placeholder_steps(n, info["kinds"], info["dtypes"]))
        module.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        raise FormatError(f"{label!r}: the state dict does not match its recorded steps: {str(exc).splitlines()[0]}") from None
    return _factors(n, modules_to_steps(module), _json_field(info.get("meta"), label), label)


def _pt_kinds() -> set[str]:
    """Step kinds torch_butterfly has a module for (its own table, read at export time)."""
    from .torch_butterfly import STEP_MODULES

    return set(STEP_MODULES)


def _placeholder_steps(n: int, kinds: list[str], dtypes: list[str | None]) -> list[Step]:
    """Steps of the right kinds, shapes and dtypes, whose values ``load_state_dict`` overwrites."""
    return [Step(kind, placeholder(kind, n, dtype)) for kind, dtype in zip(kinds, dtypes)]


# ---- mat ---------------------------------------------------------------------------------------


def write_mat(factors: Factors, tmp: str) -> None:
    """MATLAB v5 file: ``stepK_kind`` variables, permutations **1-based** doubles (so MATLAB's
    ``x(p)`` works as is), vectors as columns, plus ``n``, ``structure``, ``kinds``, ``meta_json``."""
    import scipy.io

    variables: dict[str, Any] = {
        "n": float(factors.n),
        "structure": factors.structure,
        "kinds": np.array([s.kind for s in factors.steps], dtype=object),
        "meta_json": json.dumps(export_meta(factors)),
    }
    for k, step in enumerate(factors.steps):
        if step.data is None:
            value = np.zeros((0, 0))
        elif kind_of(step.kind).indices:
            value = step.data.astype(np.float64) + 1.0
        else:
            value = step.data
        variables[_step_name(k, step)] = value
    with open(tmp, "wb") as handle:
        scipy.io.savemat(handle, variables, oned_as="column", do_compression=False)


def load_mat(path: str | Path) -> Factors:
    """Read a mat export (back to 0-based int64 permutations and canonical shapes)."""
    import scipy.io

    label = str(path)
    try:
        variables = scipy.io.loadmat(path, squeeze_me=False, chars_as_strings=True)
    except Exception as exc:  # scipy raises many types for a damaged file
        raise FormatError(f"{label!r} is not a readable MATLAB file: {exc}") from None
    meta_json = variables.get("meta_json")
    meta = _json_field(meta_json.reshape(-1)[0] if isinstance(meta_json, np.ndarray) and meta_json.size else None, label)
    n = int(meta.get("n", 0))
    steps = _steps_from_named(variables, label, lambda kind, value: _from_mat(kind, value, n, label))
    return _factors(n, steps, meta, label)


def _from_mat(kind: str, value: np.ndarray, n: int, label: str) -> np.ndarray:
    """The canonical array from a MATLAB variable: the registered shape, indices back to 0-based."""
    shape = KINDS[kind].shape(n)
    if value.size != int(np.prod(shape)):
        raise FormatError(f"{label}: a {kind} variable has {value.size} entries, expected {int(np.prod(shape))}")
    if KINDS[kind].indices:
        one_based = value.reshape(shape)
        if not np.all(one_based == np.round(one_based)):
            raise FormatError(f"{label}: a permutation holds non-integer values")
        return one_based.astype(np.int64) - 1
    return np.ascontiguousarray(value.reshape(shape))


# ---- json --------------------------------------------------------------------------------------

JSON_FORMAT = "bfly.factors.json"


def write_json(factors: Factors, tmp: str) -> None:
    """One JSON object; complex values as ``[re, im]`` pairs (an extra innermost axis of 2)."""
    doc = {
        "format": JSON_FORMAT, "format_version": EXPORT_VERSION, "n": factors.n,
        "structure": factors.structure, "dtype": str(factors.dtype), "metadata": export_meta(factors),
        "steps": [_json_step(s) for s in factors.steps],
    }
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(_pretty(doc, 0))
        handle.write("\n")


def _json_step(step: Step) -> dict[str, Any]:
    if step.data is None:
        return {"kind": step.kind}
    data = step.data
    is_complex = data.dtype.kind == "c"
    values = np.stack([data.real, data.imag], axis=-1) if is_complex else data
    return {"kind": step.kind, "dtype": str(data.dtype), "shape": list(data.shape), "complex": is_complex,
            "data": values.tolist()}


def _pretty(value: Any, level: int) -> str:
    """Indented JSON whose innermost numeric lists stay on one line (a 2x2 twiddle per line),
    so a file stays readable instead of printing one number per line."""
    pad, inner = "  " * level, "  " * (level + 1)
    if isinstance(value, dict):
        items = [f"{inner}{json.dumps(k)}: {_pretty(v, level + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}" if items else "{}"
    if isinstance(value, list) and value and (isinstance(value[0], dict) or _depth(value) > 3):
        return "[\n" + ",\n".join(inner + _pretty(v, level + 1) for v in value) + "\n" + pad + "]"
    return json.dumps(value, allow_nan=False)


def _depth(value: Any) -> int:
    depth = 0
    while isinstance(value, list) and value:
        depth, value = depth + 1, value[0]
    return depth


def load_json(path: str | Path) -> Factors:
    """Read a JSON export; shapes and dtypes are checked against the recorded ones."""
    label = str(path)
    try:
        with open(path, encoding="utf-8") as handle:
            doc = json.load(handle)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise FormatError(f"{label!r} is not readable JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != JSON_FORMAT:
        raise FormatError(f"{label!r} is not a bfly JSON export (format is not {JSON_FORMAT!r})")
    try:
        steps = [_step_from_json(item, k, label) for k, item in enumerate(doc["steps"])]
        return _factors(doc["n"], steps, dict(doc.get("metadata") or {}), label)
    except (KeyError, TypeError, ValueError) as exc:
        raise FormatError(f"{label!r}: malformed step list: {exc}") from None


def _step_from_json(item: dict[str, Any], index: int, label: str) -> Step:
    kind = item["kind"]
    _check_kind(kind, index, label)
    if not KINDS[kind].has_data:
        return Step(kind)
    dtype = np.dtype(item["dtype"])
    values = np.array(item["data"], dtype=np.int64 if KINDS[kind].indices else np.float64)
    if item.get("complex"):
        values = values[..., 0] + 1j * values[..., 1]
    data = values.astype(dtype)
    if list(data.shape) != list(item["shape"]):
        raise ValueError(f"a {kind} step has shape {list(data.shape)} but records {item['shape']}")
    return Step(kind, data)


_WRITERS: dict[str, Callable[[Factors, str], None]] = {"npz": write_npz, "pt": write_pt, "mat": write_mat, "json": write_json}
_LOADERS: dict[str, Callable[[Path], Factors]] = {"npz": load_npz, "pt": load_pt, "mat": load_mat, "json": load_json}
