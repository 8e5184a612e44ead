"""Sweep cell records on disk: where they live, writing them, and reading them back as untrusted input.

Why every record is checked: ``bfly sweep --merge`` joins directories made on other machines, and
a record's ``transform`` and ``n`` name the files it is copied to, so a record saying
``"transform": "../../x"`` (or an absolute path) once wrote outside ``-o``, and a wrong type
(``"rel_error": "abc"``) ended in a traceback while writing the report. So:

* a record is read only from a regular file (not a link, FIFO or device) of at most
  :data:`MAX_RECORD_BYTES`, as strict JSON (``NaN``/``Infinity`` refused);
* every field the sweep and its report read has a declared kind in :data:`FIELDS` (transform:
  lower-case letters, digits and ``_``; ``n``: a power of two up to :data:`bfly_cli.sizes.MAX_N`;
  numbers finite and non-negative; text bounded), other fields are dropped, and a record must be
  stored under its own cell's name;
* every file written for a cell is checked to resolve inside ``-o``'s ``cells/`` directory (a
  link planted there that points elsewhere is refused, since writes follow links).

A merge stops at the first bad record with one line naming the file and the field (exit 2); a
sweep reading its own ``-o`` to resume skips a bad record, so that cell runs again and its record
is rewritten.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from pathlib import Path
from typing import Any, Callable

from .errors import BflyError
from .report import jsonable
from .sizes import MAX_N

CELLS_DIR = "cells"
STATUSES = ("ok", "failed", "timeout")
MAX_RECORD_BYTES = 1 << 20  # a real record is about 1 KB; a traceback in it a few KB
MAX_TEXT = 1 << 16
MAX_PARAMS = 2**63 - 1
NAME = re.compile(r"[a-z0-9][a-z0-9_]{0,63}")  # every registered transform name matches (tested)


class BadField(Exception):
    """A field of a record has the wrong kind; the caller adds which file it came from."""


# ----------------------------------------------------------------------------- field kinds


def _name(value: Any) -> str:
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise BadField("must be a transform name (lower-case letters, digits and _, as 'bfly list' shows)")
    return value


def _size(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 2 <= value <= MAX_N or value & (value - 1):
        raise BadField(f"must be a power of two from 2 to {MAX_N}")
    return value


def _status(value: Any) -> str:
    if value not in STATUSES:
        raise BadField(f"must be one of {', '.join(STATUSES)}")
    return value


def _text(value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or len(value) > MAX_TEXT):
        raise BadField(f"must be text of at most {MAX_TEXT} characters, or null")
    return value


def _number(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise BadField("must be a finite number >= 0, or null")
    return float(value)


def _count(value: Any) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_PARAMS):
        raise BadField(f"must be a whole number from 0 to {MAX_PARAMS}, or null")
    return value


def _flag(value: Any) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise BadField("must be true, false or null")
    return value


BENCH_FIELDS: dict[str, Callable[[Any], Any]] = {
    "butterfly_us": _number, "dense_us": _number, "fft_us": _number, "torch_us": _number,
    "butterfly_name": _text, "fft_name": _text,
}


def _bench(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadField("must be an object of timings, or null")
    return {key: _checked(kind, value.get(key), f"bench.{key}") for key, kind in BENCH_FIELDS.items()}


REQUIRED = ("transform", "n", "status")
MEASURED = ("rmse", "rel_error")  # what the report reads from every ok cell
FIELDS: dict[str, Callable[[Any], Any]] = {
    "transform": _name, "n": _size, "status": _status, "solver": _text, "structure": _text, "route": _text,
    "dtype": _text, "file": _text, "error": _text, "traceback": _text, "machine": _text, "bench_status": _text,
    "params": _count, "rmse": _number, "rel_error": _number, "max_abs_error": _number, "seconds": _number,
    "wall_seconds": _number, "exact": _flag, "bench": _bench,
}


def _checked(kind: Callable[[Any], Any], value: Any, field: str) -> Any:
    try:
        return kind(value)
    except BadField as exc:
        text = str(exc)
        raise BadField(text if text.startswith("field ") else f"field {field!r} {text}") from None


def check_record(record: Any) -> dict[str, Any]:
    """The record with every known field checked (unknown ones dropped); :class:`BadField` otherwise."""
    if not isinstance(record, dict):
        raise BadField("is not a JSON object")
    missing = [key for key in REQUIRED if key not in record]
    if missing:
        raise BadField(f"has no field {missing[0]!r}")
    checked = {key: _checked(kind, record[key], key) for key, kind in FIELDS.items() if key in record}
    for key in MEASURED if checked["status"] == "ok" else ():
        if checked.get(key) is None:
            raise BadField(f"field {key!r} must be a number in an ok record (the report compares it)")
    return checked


def cell_key(transform: Any, n: Any) -> str:
    """``NAME-N``, the file stem of a cell, from values checked to be safe in a file name."""
    return f"{_checked(_name, transform, 'transform')}-{_checked(_size, n, 'n')}"


# ----------------------------------------------------------------------------- paths


def cells_dir(out_dir: Path) -> Path:
    """Where the per-cell records and factor files live."""
    return Path(out_dir) / CELLS_DIR


def cell_file(out_dir: Path, key: str, suffix: str) -> Path:
    """``out_dir/cells/KEY.SUFFIX``, refused unless it resolves inside ``out_dir/cells`` (links followed,
    as writes follow them)."""
    folder = cells_dir(out_dir).resolve()
    path = cells_dir(out_dir) / f"{key}{suffix}"
    if os.sep in key or path.resolve().parent != folder:
        raise BflyError(f"refusing to write {str(path)!r}: it resolves outside {str(folder)!r}; "
                        f"remove that link or choose another -o")
    return path


# ----------------------------------------------------------------------------- writing and reading


def write_record(out_dir: Path, record: dict[str, Any]) -> Path:
    """Write one cell's record atomically (temp file + rename), replacing an older one."""
    from .safe_write import atomic_write

    cells_dir(out_dir).mkdir(parents=True, exist_ok=True)
    try:
        key = cell_key(record.get("transform"), record.get("n"))
    except BadField as exc:
        raise BflyError(f"cannot write a cell record whose {exc}") from None
    text = json.dumps(jsonable(record), indent=1, sort_keys=True)
    return atomic_write(cell_file(out_dir, key, ".json"), lambda tmp: Path(tmp).write_text(text + "\n"), force=True)


def read_record(path: Path) -> dict[str, Any]:
    """One record file, checked (see the module's notes); a one-line :class:`BflyError` naming it otherwise."""
    try:
        record = check_record(_parse(path))
        if path.name != f"{record['transform']}-{record['n']}.json":
            raise BadField(f"records cell {record['transform']}-{record['n']} but is named {path.name}")
    except BadField as exc:
        raise BflyError(f"cell record {str(path)!r} {exc}; remove it or re-run that shard") from None
    return record


def _parse(path: Path) -> Any:
    """The JSON of a regular file of bounded size; strict (no NaN/Infinity), never following links."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise BadField("is not a regular file (a directory, FIFO or device)")
            if info.st_size > MAX_RECORD_BYTES:
                raise BadField(f"is {info.st_size:,} bytes, over the {MAX_RECORD_BYTES:,} a record can have")
            data = handle.read(MAX_RECORD_BYTES + 1)
    except OSError as exc:  # ELOOP: a symbolic link (never followed)
        raise BadField(f"cannot be read as a plain file ({exc.strerror or exc})") from None
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:  # JSON syntax, UTF-8, huge integers, deep nesting
        raise BadField(f"is not valid JSON ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None


def _no_constant(name: str) -> Any:
    raise BadField(f"holds {name}, which is not a number JSON allows")


def load_records(out_dir: Path, strict: bool = False) -> dict[str, dict[str, Any]]:
    """Every cell record under ``out_dir``, by cell key.

    ``strict`` (merging records from elsewhere): a bad record is an error naming the file.
    Otherwise (a sweep's own output) a bad record is skipped, so its cell counts as not run.
    """
    records = {}
    for path in sorted(cells_dir(out_dir).glob("*.json")):
        try:
            record = read_record(path)
        except BflyError:
            if strict:
                raise
            continue
        records[f"{record['transform']}-{record['n']}"] = record
    return records
