"""What every command shares: error-to-exit-code mapping, the two consoles, JSON output, progress.

Human text goes to stderr (errors, progress) or stdout (summaries); with ``--json`` stdout holds
one JSON document and nothing else. Progress appears only when stderr is a terminal.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sys
from typing import Any, Callable, Iterator

import typer

from ..report import jsonable


def guarded(fn: Callable) -> Callable:
    """Turn library errors into a one-line message and the documented exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from ..errors import BflyError

        try:
            return fn(*args, **kwargs)
        except BflyError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(code=exc.exit_code) from None
        except MemoryError:
            print("error: out of memory; try a smaller N or close other programs", file=sys.stderr)
            raise typer.Exit(code=2) from None

    return wrapper


def emit_json(document: dict[str, Any]) -> None:
    """Print one JSON document on stdout (non-finite floats become null, numpy types plain)."""
    print(json.dumps(jsonable(document), indent=2))


def stdout_console():
    """A rich console on stdout (plain text when piped)."""
    from rich.console import Console

    return Console(highlight=False)


@contextlib.contextmanager
def progress_status(message: str, quiet: bool) -> Iterator[None]:
    """A spinner on stderr while work runs, only when stderr is a terminal and not quiet."""
    if quiet or not sys.stderr.isatty():
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(message):
        yield
