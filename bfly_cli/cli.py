"""The ``bfly`` command: a thin Typer layer over the library.

Only typer is imported at start-up so ``bfly --help`` answers at once; each command module imports
numpy, h5py or torch inside the command. Commands live one per module in
:mod:`bfly_cli.commands`; errors are turned into exit codes in one place
(:func:`bfly_cli.commands._common.guarded`) and here (:func:`main`: the parser's usage errors,
signals, stdout): 0 success, 1 a check failed, 2 bad usage or input, 128 + N killed by signal N
(130 Ctrl-C, 143 SIGTERM, 129 SIGHUP), 141 stdout's reader went away (``| head``).
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

import typer

from ._version import __version__
from .commands import register_all

app = typer.Typer(
    name="bfly",
    help="Learn fast butterfly factorizations of linear transforms, save them, verify and run them.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _plain_argument_help() -> None:
    """Show an argument by its metavar alone (``DIR``), not with typer's Python type beside it
    (``DIR <list[Path]>``): every argument here has a metavar that says what it takes. Cosmetic, so
    a typer without this hook is left as it is."""
    try:
        from typer.core import TyperArgument
    except ImportError:  # pragma: no cover - older typer
        return
    shown = getattr(TyperArgument, "display_type", None)
    if shown is None or getattr(shown, "_bfly_plain", False):
        return

    def display_type(self: "TyperArgument", ctx: Any) -> Any:
        return None if self.metavar else shown(self, ctx)

    display_type._bfly_plain = True  # type: ignore[attr-defined]
    TyperArgument.display_type = display_type  # type: ignore[method-assign]


_plain_argument_help()


def _one_line_usage_errors() -> None:
    """Make the parser's own report of a usage error the one line :func:`_usage_error` prints, also
    where the parser reports it itself (an embedding caller, ``typer.testing.CliRunner``), not only
    through :func:`main`."""
    usage_error = _parser_exceptions().UsageError
    if getattr(usage_error.show, "_bfly_one_line", False):
        return

    def show(self: Any, file: Any = None) -> None:
        _usage_error(self)

    show._bfly_one_line = True  # type: ignore[attr-defined]
    usage_error.show = show


def _version(value: bool) -> None:
    if value:
        typer.echo(f"bfly {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Learn fast butterfly factorizations of linear transforms, save them, verify and run them."""


register_all(app)


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP (or SIGINT), raised like Ctrl-C so every ``finally`` (temp-file cleanup)
    runs and the same code paths that handle Ctrl-C handle it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


_received: list[int] = []
_HANDLED = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n))


def _raise_interrupted(signum: int, _frame: Any) -> None:
    _received.append(signum)
    raise Interrupted(signum)


def _install_signal_handlers() -> None:
    """Stop on SIGTERM/SIGHUP the way Ctrl-C stops; a signal already ignored (``nohup``) stays so."""
    for signum in _HANDLED:
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _raise_interrupted)


class _ClosedStdout:
    """Stands in for a stdout that was closed before the start (``bfly list >&-``): Python would
    otherwise drop every print silently and exit 0 with the output lost."""

    def write(self, _text: str) -> int:
        raise OSError(9, "stdout is closed")

    def flush(self) -> None:
        """Nothing was ever written, so there is nothing to lose."""

    @property
    def buffer(self) -> "_ClosedStdout":
        return self

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        raise OSError(9, "stdout is closed")


def _guard_standard_streams() -> None:
    """Keep descriptors 0-2 occupied (a file bfly opens must never become "stdout") and make writes
    to a closed stdout fail loudly."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            os.open(os.devnull, os.O_RDWR)  # the lowest free descriptor: this one
            if fd == 0:
                sys.stdin = open(0, closefd=False)  # reads as empty, like </dev/null
            elif fd == 1:
                sys.stdout = _ClosedStdout()  # type: ignore[assignment]
            else:  # print(file=None) would write to stdout: messages must never land there
                sys.stderr = open(2, "w", closefd=False)


def _parser_exceptions() -> Any:
    """The parser's exception classes: typer vendors click from 0.2x on, older typer uses click."""
    try:
        from typer._click import exceptions
    except ImportError:  # pragma: no cover - older typer
        from click import exceptions
    return exceptions


def _usage_error(exc: Any) -> int:
    """The parser's complaint as one line (the README's promise), with where to find the usage."""
    no_args = getattr(_parser_exceptions(), "NoArgsIsHelpError", ())
    if isinstance(exc, no_args):
        print(exc.ctx.get_help(), file=sys.stderr)
        return 2
    text = " ".join(exc.format_message().split()).rstrip(".").replace("Value error, ", "")
    if text[:1].isupper() and text[1:2].islower():
        text = text[0].lower() + text[1:]
    command = exc.ctx.command_path if getattr(exc, "ctx", None) is not None else "bfly"
    message = f"{text}; see '{command} --help'"
    print(f"error: {message}", file=sys.stderr)
    if "--json" in sys.argv[1:]:
        from .commands._common import emit_json_error

        emit_json_error(message, exc.exit_code)
    return exc.exit_code


def _interrupted(signum: int | None) -> int:
    """One line and 128 + the signal's number, as a shell reports a process that signal stopped."""
    signum = signum or signal.SIGINT
    name = signal.Signals(signum).name
    try:
        print("interrupted" if signum == signal.SIGINT else f"terminated by {name}", file=sys.stderr)
    except OSError:  # SIGHUP: the terminal may be gone
        pass
    return 128 + signum


def _silence_stdout() -> None:
    """Point descriptor 1 at /dev/null so the interpreter's last flush cannot fail a second time."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _pipe_closed() -> int:
    _silence_stdout()
    return 128 + signal.SIGPIPE if hasattr(signal, "SIGPIPE") else 141


def _run_app() -> int:
    """Run the command; every way it can end becomes an exit code here, never a traceback."""
    from .commands._common import StdoutPipeClosed, stdout_reader_gone

    parser = _parser_exceptions()
    try:
        result = app(standalone_mode=False, prog_name="bfly")
    except parser.UsageError as exc:
        return _usage_error(exc)
    except parser.ClickException as exc:
        print(f"error: {' '.join(exc.format_message().split())}", file=sys.stderr)
        return exc.exit_code
    except typer.Abort:
        return _interrupted(_received[-1] if _received else None)
    except Interrupted as exc:
        return _interrupted(exc.signum)
    except KeyboardInterrupt:
        return _interrupted(None)
    except (StdoutPipeClosed, BrokenPipeError):
        return _pipe_closed()
    except SystemExit as exc:  # the parser's own exit 1 on EPIPE (help text into a closed pipe)
        if exc.code == 1 and stdout_reader_gone():
            return _pipe_closed()
        raise
    except OSError as exc:  # help or --version text into a closed or full stdout
        return _stdout_failed(exc)
    code = result if isinstance(result, int) else 0
    return _interrupted(_received[-1] if _received else None) if code == 130 else code


def _flush_stdout(code: int) -> int:
    """Output still buffered must reach stdout: a failure there is exit 2 (141 for ``| head``),
    never exit 0 with the output lost."""
    try:
        sys.stdout.flush()
    except OSError as exc:
        return _stdout_failed(exc)
    return code


def _stdout_failed(exc: OSError) -> int:
    """141 quietly when stdout's reader went away, else one line and exit 2 (output was lost)."""
    from .commands._common import os_error_line, stdout_reader_gone

    if isinstance(exc, BrokenPipeError) or stdout_reader_gone():
        return _pipe_closed()
    _silence_stdout()
    print(f"error: {os_error_line(exc)}", file=sys.stderr)
    return 2


_one_line_usage_errors()


def main() -> None:
    """Console-script entry point."""
    _install_signal_handlers()
    _guard_standard_streams()
    code = _run_app()
    if code != 141:
        code = _flush_stdout(code)
    raise SystemExit(code)


if __name__ == "__main__":
    main()
