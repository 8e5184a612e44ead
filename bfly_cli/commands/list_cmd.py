"""``bfly list``: the registered transforms with one-line descriptions."""

from __future__ import annotations

import typer

from ._common import emit_json, guarded, stdout_console


@guarded
def list_transforms(as_json: bool = typer.Option(False, "--json", help="Print one JSON document.")) -> None:
    """List the named transforms that 'bfly learn' accepts."""
    import transforms

    rows = [(name, transforms.get(name)) for name in transforms.names()]
    if as_json:
        emit_json({"transforms": [{"name": n, "description": t.description, "options": list(t.options)} for n, t in rows]})
        return
    from rich.table import Table

    table = Table(title="transforms (or give a .npy/.npz/.h5 matrix file)")
    table.add_column("name")
    table.add_column("description")
    table.add_column("options")
    for name, transform in rows:
        table.add_row(name, transform.description, ", ".join("--" + o for o in transform.options))
    stdout_console().print(table)


def register(app: typer.Typer) -> None:
    app.command("list")(list_transforms)
