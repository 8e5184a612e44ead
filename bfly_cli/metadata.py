"""Metadata keys: the one table of what a factor file's metadata holds, and its encode/decode pair.

A factor file's metadata is a flat dict. HDF5 attributes hold scalars and strings, so a key whose
value is a dict or a list (``transform_options``, ``auto_tried``, ``solver_log`` ...) is stored as
a JSON string; every reader must turn those back into Python values, and every writer must agree
on which keys they are. This module says it once:

* :data:`KEYS`: every known key with its Python type, whether it is stored JSON-encoded, and
  whether a file must carry it. Adding a key a solver records is one :func:`_key` line.
* :func:`encode_attrs` / :func:`decode`: to HDF5 attributes and back (``h5format``).
* :func:`encode_document` / :func:`decode`: to one JSON document and back (the export formats,
  ``bfly show --json``).

Files are untrusted, so :func:`decode` also checks every registered key's type (and, for counts
and sizes, its smallest allowed value): a ``rel_error`` of ``"abc"``, an ``n`` of ``16.5`` or
``"16"``, a ``transform_options`` that is a list would otherwise crash ``show`` or ``verify``
later, far from the cause. A wrong type raises :class:`BadMetadata` naming the key.

Unknown keys still round-trip: a dict or list is JSON-encoded on write, and on read a string that
starts with ``{`` or ``[`` and parses as JSON is decoded (a plain string that happens to look like
JSON would be decoded too: register the key as ``str`` to keep it a string).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .report import jsonable


class BadMetadata(ValueError):
    """A registered key whose value has the wrong type or is out of range (the file is damaged)."""


@dataclass(frozen=True)
class MetaKey:
    """One metadata key: its Python ``type``, stored as a JSON string (``encoded``), ``required``,
    and for an int key the smallest value that makes sense (``minimum``: n >= 2, counts >= 0)."""

    name: str
    type: type
    encoded: bool = False
    required: bool = False
    minimum: int | None = None


def _key(name: str, type_: type, *, required: bool = False, minimum: int | None = None) -> MetaKey:
    """A registry entry; dicts and lists are the JSON-encoded ones (HDF5 has no such attributes)."""
    return MetaKey(name, type_, encoded=type_ in (dict, list), required=required, minimum=minimum)


KEYS: dict[str, MetaKey] = {key.name: key for key in (
    # what every factor file carries (docs/file-format.md, "Root attributes"), in that order
    _key("format", str, required=True),
    _key("format_version", int, required=True),
    _key("transform", str, required=True),
    _key("n", int, required=True, minimum=2),
    _key("dtype", str, required=True),
    _key("structure", str, required=True),
    _key("solver", str, required=True),
    _key("rmse", float, required=True),
    _key("rel_error", float, required=True),
    _key("max_abs_error", float, required=True),
    _key("seconds", float, required=True),
    _key("seed", int, required=True),
    _key("bfly_version", str, required=True),
    _key("created", str, required=True),
    _key("command", str, required=True),
    # Factors.transpose() / adjoint() / inverse(): what the chain was derived from, and how
    _key("derived_from", str),
    _key("derivation", str),
    # learn(): provenance, sizes and the verdict
    _key("transform_options", dict),
    _key("source", str),
    _key("source_sha256", str),
    _key("exact", bool),
    _key("exactness", str),
    _key("input_precision", str),
    _key("noise_floor", float),
    _key("params", int, minimum=0),
    _key("real_params", int, minimum=0),
    _key("dense_real_params", int, minimum=1),
    # --solver auto
    _key("auto_route", str),
    _key("auto_reason", str),
    _key("auto_tried", list),
    # closed-form routes
    _key("bp_rows", str),
    _key("rank2_order", str),
    _key("rank2_noise_floor", float),
    _key("two_butterfly_basis", str),
    _key("two_butterfly_noise_floor", float),
    _key("eigen_residual", float),
    _key("basis_conditioning", float),
    _key("probe_rel_error", float),
    _key("rejected", list),
    # the approximation route
    _key("budget", int, minimum=0),
    _key("closed_form_rel_error", float),
    _key("init", str),
    _key("init_rel_errors", dict),
    _key("polish", list),
    _key("near_exact_finish", dict),
    # the gradient learner
    _key("model", str),
    _key("restarts_used", int, minimum=0),
    _key("solver_seed", int),
    _key("solver_device", str),
    _key("solver_log", list),
)}

REQUIRED: tuple[str, ...] = tuple(name for name, key in KEYS.items() if key.required)

# What a required key records when whoever saves the factors cannot know it (factors trained with
# torch, built by hand): a word saying so, NaN for a measure (JSON: null), the default seed. Never
# a guess: ``bfly verify`` then says there is no target to rebuild instead of passing.
UNKNOWN: dict[str, Any] = {"transform": "custom", "solver": "custom", "rmse": float("nan"),
                           "rel_error": float("nan"), "max_abs_error": float("nan"), "seconds": float("nan"),
                           "seed": 0, "command": "unknown"}


def completed(meta: dict[str, Any]) -> dict[str, Any]:
    """``meta`` with every required key it lacks (or holds as None) recorded as unknown
    (:data:`UNKNOWN`), and the writer's own facts (``bfly_version``, ``created``) filled in, so the
    file ``save`` writes is one ``load`` accepts. ``format``, ``n``, ``dtype`` and ``structure``
    come from the steps when the file is written."""
    import datetime

    from ._version import __version__

    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    given = {name: value for name, value in meta.items() if value is not None}
    return {**UNKNOWN, "bfly_version": __version__, "created": now, **given}


def encode_attrs(meta: dict[str, Any]) -> dict[str, Any]:
    """Values as HDF5 attributes: None dropped (absent means unknown), dicts and lists as JSON."""
    out: dict[str, Any] = {}
    for name, value in meta.items():
        if value is None:
            continue
        out[name] = json.dumps(value) if isinstance(value, (dict, list)) else value
    return out


def encode_document(meta: dict[str, Any]) -> dict[str, Any]:
    """Values for one JSON document: None dropped, numpy scalars plain, non-finite floats null."""
    return {name: jsonable(value) for name, value in meta.items() if value is not None}


def decode(stored: dict[str, Any]) -> dict[str, Any]:
    """Python values from either encoding: JSON strings parsed, registered types restored.

    A registered JSON key whose text is not JSON raises ``ValueError`` (the file is damaged);
    an unknown key's string that is not JSON stays a string.
    """
    return {name: decode_value(name, value) for name, value in stored.items()}


def decode_value(name: str, value: Any) -> Any:
    """One value of :func:`decode` (``value`` already a plain Python scalar, string or container)."""
    key = KEYS.get(name)
    if key is None:
        return _maybe_json(value)
    if key.encoded and isinstance(value, str):
        value = json.loads(value)
    return checked(key, value)


_TYPE_WORDS = {str: "a string", int: "an integer", float: "a number", bool: "a boolean (true/false)",
               dict: "a JSON object", list: "a JSON list"}


def checked(key: MetaKey, value: Any) -> Any:
    """``value`` as ``key.type`` (an int accepted for a float), or :class:`BadMetadata`.

    None passes: it is how a JSON document records a non-finite float or an unknown value.
    bool is refused where a number is expected (Python counts it as an int; a file never should).
    """
    if value is None:
        return None
    if key.type is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)  # a float written as a whole number (JSON "0") is still a float
    if not isinstance(value, key.type) or (key.type is int and isinstance(value, bool)):
        raise BadMetadata(f"attribute {key.name} must be {_TYPE_WORDS[key.type]}, not {type(value).__name__} ({short_repr(value)})")
    if key.minimum is not None and value < key.minimum:
        raise BadMetadata(f"attribute {key.name} = {value} is out of range (at least {key.minimum})")
    return value


def short_repr(value: Any) -> str:
    """A value for an error message: its repr, cut to one short line."""
    text = " ".join(repr(value).split())
    return text if len(text) <= 40 else text[:37] + "..."


def _maybe_json(value: Any) -> Any:
    """An unknown key's dict or list back from its JSON text; anything else unchanged."""
    if not isinstance(value, str) or not value.startswith(("{", "[")):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value
