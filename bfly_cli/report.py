"""Rendering results for people (rich tables) and machines (JSON dicts). No computation here."""

from __future__ import annotations

import math
from typing import Any

def jsonable(value: Any) -> Any:
    """numpy scalars to Python, non-finite floats to None, recursively: output must be strict JSON.

    A file's unknown attributes pass through load unchanged, so anything may arrive here: arrays
    become lists, bytes text, and any other value (complex, extended precision) its ``str``.
    """
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist") and callable(value.tolist) and getattr(value, "ndim", 0) > 0:
        return jsonable(value.tolist())
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


LEARN_JSON_KEYS = (
    "transform", "n", "solver", "structure", "dtype", "params", "dense_params", "rmse", "rel_error",
    "max_abs_error", "exact", "seconds", "output",
)


def learn_document(meta: dict[str, Any], output: str | None) -> dict[str, Any]:
    """The ``bfly learn --json`` document: the required keys first, then the rest of the metadata."""
    doc = {**meta, "dense_params": int(meta["n"]) ** 2, "output": output}
    ordered = {key: doc.get(key) for key in LEARN_JSON_KEYS}
    ordered.update({k: v for k, v in doc.items() if k not in ordered})
    return ordered


def _params_text(meta: dict[str, Any], params: int, n: int) -> str:
    """Stored parameters vs the dense matrix, in real numbers when the file says how many.

    ``params`` counts a complex twiddle as one number; real numbers are the fair unit across a
    real rank-2 chain, a complex butterfly and the dense matrix (complex entries count twice).
    """
    real, dense = meta.get("real_params"), meta.get("dense_real_params")
    if real is None or dense is None:  # a file written before these fields existed
        return f"{params:,} vs dense {n * n:,} ({params / (n * n):.3g}x)"
    dense, real = int(dense), int(real)
    as_real = f" ({real:,} real)" if real != params else ""
    return f"{params:,}{as_real} vs dense {dense:,} real ({real / dense:.3g}x)"


def _route_text(meta: dict[str, Any]) -> str:
    """The route auto chose, with the reason's note when there is one (full reason: ``--json``)."""
    reason = str(meta.get("auto_reason", ""))
    note = reason.split("; note: ", 1)[1] if "; note: " in reason else ""
    return f"{meta['auto_route']}" + (f" (note: {note})" if note else "")


def summary_table(meta: dict[str, Any], title: str):
    """A two-column rich table of the headline numbers of a factorization."""
    from rich.table import Table

    n = int(meta["n"])
    params = int(meta.get("params", 0))
    table = Table(title=title, show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    unmeasured = "approximate" if "exact" in meta else "not measured"  # trained or hand-built factors
    verdict = str(meta.get("exactness") or ("exact" if meta.get("exact") else unmeasured))
    table.add_row("transform", f"{meta.get('transform')} (N = {n})")
    table.add_row("structure", f"{meta.get('structure')}, {verdict}" if "(" in verdict else f"{meta.get('structure')} ({verdict})")
    table.add_row("solver / dtype", f"{meta.get('solver')} / {meta.get('dtype')}")
    table.add_row("parameters", _params_text(meta, params, n))
    for key in ("rel_error", "max_abs_error", "rmse"):
        table.add_row(key + (" (paper)" if key == "rmse" else ""), f"{float(meta[key]):.3e}")
    if meta.get("noise_floor") is not None and verdict != "exact":
        table.add_row("noise floor", f"{float(meta['noise_floor']):.1e} (distance to the structure; input {meta.get('input_precision')})")
    table.add_row("solver time", f"{float(meta['seconds']):.3f} s")
    if meta.get("auto_route"):
        table.add_row("auto route", _route_text(meta))
    return table
