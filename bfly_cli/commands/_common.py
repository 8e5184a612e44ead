"""What every command shares: error-to-exit-code mapping, the two consoles, JSON output, progress.

Human text goes to stderr (errors, progress) or stdout (summaries); with ``--json`` stdout holds
one JSON document and nothing else. Progress appears only when stderr is a terminal.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import sys
from typing import Any, Callable, Iterator

import typer

from ..report import jsonable


class StdoutPipeClosed(Exception):
    """The reader of stdout went away (``bfly ... | head``): not a failure of the run, so
    :func:`bfly_cli.cli.main` exits quietly with 141 (128 + SIGPIPE), as a shell tool would. Not an
    OSError, so click does not turn it into exit 1 on the way out."""


def guarded(fn: Callable) -> Callable:
    """Turn library errors into a one-line message and the documented exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from ..errors import BflyError

        global _json_emitted
        as_json = bool(kwargs.get("as_json"))
        _json_emitted = False  # per command run (tests run many in one process)
        try:
            return fn(*args, **kwargs)
        except BflyError as exc:
            _fail(str(exc), exc.exit_code, as_json)
        except MemoryError:
            _fail("out of memory; try a smaller N or close other programs", 2, as_json)
        except OSError as exc:  # a full disk, a closed stdout, a vanished directory: never a traceback
            if exc.errno in (None, errno.EPIPE) and stdout_reader_gone():  # numpy's short write has no errno
                raise StdoutPipeClosed() from None
            _fail(os_error_line(exc), 2, as_json)

    return wrapper


def _fail(message: str, code: int, as_json: bool) -> None:
    """The one-line error on stderr (and, under ``--json``, as a JSON document on stdout), then
    the exit code."""
    print(f"error: {message}", file=sys.stderr)
    if as_json:
        emit_json_error(message, code)
    raise typer.Exit(code=code) from None


_json_emitted = False  # a command that already printed its document (verify: a failed check) adds none


def emit_json_error(message: str, code: int) -> None:
    """Under ``--json``, a failure is a document too: ``{"error": ..., "exit_code": N}`` on one
    line, so a pipeline reading stdout never gets an empty string to parse. Skipped when the
    command already printed its own document (stdout holds exactly one)."""
    if not _json_emitted:
        try:
            print(json.dumps({"error": message, "exit_code": code}))
        except OSError:
            pass  # stdout is gone too: the stderr line has said it


def os_error_line(exc: OSError) -> str:
    """One line for an input/output failure the library did not name itself."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.filename:
        return f"cannot use {str(exc.filename)!r}: {reason}; check the path, its permissions and the free space"
    return f"input/output failed: {reason}; check where stdout goes and the free space"


def stdout_reader_gone() -> bool:
    """Whether stdout is a pipe whose reading end is closed (the poll reports an error on it),
    to tell ``| head`` apart from a broken pipe to a worker process."""
    import select

    try:
        poller = select.poll()
        poller.register(1, select.POLLOUT)
        return any(revents & select.POLLERR for _, revents in poller.poll(0))
    except (OSError, AttributeError, ValueError):
        return False


def emit_json(document: dict[str, Any]) -> None:
    """Print one JSON document on stdout (non-finite floats become null, numpy types plain)."""
    global _json_emitted
    print(json.dumps(jsonable(document), indent=2))
    _json_emitted = True


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
