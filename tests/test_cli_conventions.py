"""CLI conventions (#14 item 6): ``-h``, shell completion, ``python -m bfly_cli``, and under
``--json`` a one-line JSON error document on stdout besides the stderr line.

Run as real processes (``python -m bfly_cli``), the way a user or a pipeline meets the command.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # each case starts an interpreter


def bfly(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bfly_cli", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


@pytest.mark.parametrize("args", [("-h",), ("learn", "-h"), ("verify", "-h")])
def test_short_help(args: tuple[str, ...]) -> None:
    done = bfly(*args)
    assert done.returncode == 0
    assert done.stdout.startswith("Usage: bfly")


def test_completion_is_offered() -> None:
    done = bfly("--help")
    assert "--install-completion" in done.stdout and "--show-completion" in done.stdout
    script = bfly("--show-completion", env={"SHELL": "/bin/bash"})
    assert script.returncode == 0 and "_BFLY_COMPLETE" in script.stdout


@pytest.mark.parametrize("args, code", [
    (("learn", "nosuch", "--n", "8", "--json"), 2),   # a library error
    (("learn", "dct", "--n", "abc", "--json"), 2),    # a parser error
    (("show", "missing.h5", "--json"), 2),
])
def test_json_error_document(tmp_path, args: tuple[str, ...], code: int) -> None:
    done = subprocess.run([sys.executable, "-m", "bfly_cli", *args], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == code
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    document = json.loads(lines[0])
    assert document["exit_code"] == code and document["error"]
    assert done.stderr.strip() == f"error: {document['error']}"


def test_failed_check_keeps_one_document(tmp_path) -> None:
    """verify --json prints its own report on a failed check: no second (error) document."""
    learned = bfly("learn", "dft", "--n", "8", "-o", str(tmp_path / "d.h5"))
    assert learned.returncode == 0, learned.stderr
    done = bfly("verify", str(tmp_path / "d.h5"), "--tol", "1e-300", "--json")
    assert done.returncode == 1
    document = json.loads(done.stdout)  # exactly one document: the report, not an error document besides it
    assert document["passed"] is False and "error" not in document
