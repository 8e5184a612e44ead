"""One module per ``bfly`` sub-command; each exposes ``register(app)``.

Keep module tops free of heavy imports (numpy, h5py, torch): they load when ``bfly`` starts.
To add a command, write ``commands/<name>.py`` with a ``register(app)`` and list it below.
"""

from __future__ import annotations

import importlib

COMMAND_MODULES = ("list_cmd", "learn_cmd", "show_cmd", "bench_cmd", "sweep_cmd", "apply_cmd", "export_cmd", "verify_cmd", "analyze_cmd")


def register_all(app) -> None:
    """Attach every command module's commands to the Typer ``app``."""
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(app)
