"""``bfly list``: the registered transforms with one-line descriptions."""

from __future__ import annotations

import typer

from ._common import emit_json, guarded, stdout_console


@guarded
def list_transforms(as_json: bool = typer.Option(False, "--json", help="Print one JSON document.")) -> None:
    """List the named transforms that 'bfly learn' accepts."""
    from bfly_cli import transforms

    rows = [(name, transforms.get(name)) for name in transforms.names()]
    if as_json:
        emit_json({"transforms": [_json_row(n, t) for n, t in rows]})
        return
    from rich.table import Table

    table = Table(title="transforms (or give a .npy/.npz/.h5 matrix file)")
    table.add_column("name")
    table.add_column("description")
    table.add_column("options")
    table.add_column("default (why)")
    for name, transform in rows:
        options = "\n".join(_option_text(o, transform.choices.get(o)) for o in transform.options)
        defaults = "\n".join(f"{o} {c.default}: {c.why}" for o, c in transform.choices.items())
        table.add_row(name, transform.description, options, defaults)
    stdout_console().print(table)


def _json_row(name: str, transform) -> dict:
    """One transform for ``--json``: its options, and for each fixed-value option the values it
    accepts, its default and why that default."""
    choices = {o: {"values": list(c.values), "default": c.default, "why": c.why} for o, c in transform.choices.items()}
    return {"name": name, "description": transform.description, "options": list(transform.options), "choices": choices}


def _option_text(option: str, choice) -> str:
    """``--norm backward, ortho, forward, paper``, or the bare flag for a free-valued option."""
    return f"--{option} " + ", ".join(str(v) for v in choice.values) if choice else f"--{option}"


def register(app: typer.Typer) -> None:
    app.command("list")(list_transforms)
