"""Range checks attached to the numeric option declarations, run while the arguments are parsed.

Why a callback and not the command body: the check then runs before the command starts any work
(building a target, loading a file), and an option's declaration shows its range in one place.
Why not typer's ``min``/``max``: they let NaN through (every comparison with NaN is false) and
their message is the parser's, not the one-line ``error: <problem>; <fix>`` every other bad value
gets. The ranges themselves live in :mod:`bfly_cli.limits`.
"""

from __future__ import annotations

from typing import Any, Callable

import typer

from ..limits import RANGES, check
from ._common import guarded


def in_range(flag: str) -> Callable[..., Any]:
    """A typer callback: ``None`` (option not given) passes; a value outside ``RANGES[flag]`` ends
    the command with the one-line error and exit 2, through the same :func:`guarded` as the rest
    (so under ``--json``, declared eager to be parsed first, the error is a JSON document too)."""

    def callback(ctx: typer.Context, value: Any) -> Any:
        if value is None:
            return None
        return guarded(_check)(flag, value, as_json=bool(ctx.params.get("as_json")))

    return callback


def _check(flag: str, value: Any, as_json: bool = False) -> Any:
    """:func:`bfly_cli.limits.check`; ``as_json`` is read by :func:`guarded` only."""
    return check(flag, value)



def range_help(flag: str, text: str) -> str:
    """``text`` with the valid range appended, so ``--help`` states it: ``Threads [1..1024].``"""
    return f"{text} Valid: {RANGES[flag].text()}."
