"""The library API index: every advertised name resolves to the same callable, every time."""

from __future__ import annotations

import importlib
import subprocess
import sys

import bfly_cli


def test_every_api_name_is_stable_after_its_module_is_imported() -> None:
    for name in bfly_cli.__all__:
        first = getattr(bfly_cli, name)
        if name in bfly_cli._LAZY:
            importlib.import_module(f"bfly_cli.{bfly_cli._LAZY[name][0]}")
        assert getattr(bfly_cli, name) is first, name
        assert not isinstance(first, type(bfly_cli)), f"{name} is a module"


def test_import_is_cheap() -> None:
    code = "import sys, bfly_cli; print(sorted(m for m in ('numpy', 'torch', 'h5py') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
