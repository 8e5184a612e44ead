"""The parent side of a sweep worker: one ``python -m bfly_cli.sweep_worker`` process.

Kept apart from :mod:`bfly_cli.sweep` (which decides what runs, and records results) because
this is only process plumbing: start, send one JSON request, read one JSON answer, kill. It
knows nothing of cells beyond the opaque ``job`` it holds while one is running.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


class Worker:
    """A ``python -m bfly_cli.sweep_worker`` process that runs requests sent as JSON lines on its stdin.

    Long-lived so numpy, scipy and the solvers are imported once per worker rather than once per
    cell; a plain subprocess rather than multiprocessing so the user's ``__main__`` is never
    re-imported and no threads of the parent (progress bar, BLAS) are forked. Killed and replaced
    when a request times out or the process dies. ``job`` is what it is running (None when idle).
    """

    def __init__(self, log) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bfly_cli.sweep_worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=log, text=True, bufsize=1, env=worker_env(),
        )
        self.job: Any = None
        self.started = 0.0
        self.deadline = math.inf

    def submit(self, job: Any, request: dict[str, Any], timeout: float) -> None:
        """Send one request; the worker answers with one JSON line (its record)."""
        self.job, self.started = job, time.monotonic()
        self.deadline = self.started + timeout
        try:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
        except OSError:  # died already; the next read sees EOF and records the failure
            pass

    def receive(self) -> dict[str, Any] | None:
        """The record the worker sent, or None when it died (EOF or garbage instead of a line)."""
        line = self.process.stdout.readline()
        self.job = None
        try:
            return json.loads(line) if line else None
        except ValueError:
            return None

    def kill(self) -> None:
        """End the process (a timed-out cell may be stuck in compiled code: SIGKILL, not a request)."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:
                pass


def worker_env() -> dict[str, str]:
    """The parent's environment, with this bfly's source root first on PYTHONPATH.

    The worker must import the same ``bfly_cli`` as the parent even when the parent found it
    through ``sys.path`` tweaks (a test run from the checkout, a script next to it).
    """
    root = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"}
