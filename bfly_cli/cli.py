"""The ``bfly`` command: a thin Typer layer over the library.

Only typer is imported at start-up so ``bfly --help`` answers at once; each command module imports
numpy, h5py or torch inside the command. Commands live one per module in
:mod:`bfly_cli.commands`; errors are turned into exit codes in one place
(:func:`bfly_cli.commands._common.guarded`): 0 success, 1 a check failed, 2 bad usage or input,
130 interrupted.
"""

from __future__ import annotations

import typer

from ._version import __version__
from .commands import register_all

app = typer.Typer(
    name="bfly",
    help="Learn fast butterfly factorizations of linear transforms, save them, verify and run them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


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


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        import sys

        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
