"""Worker process of ``bfly sweep``: reads cell requests (JSON lines) on stdin, answers records.

Started by :class:`bfly_cli.sweep_pool.Worker` as ``python -m bfly_cli.sweep_worker``. The protocol
channel is a private copy of stdout; the real file descriptor 1 is pointed at stderr (the sweep's
log) so a solver that prints cannot corrupt the answers. Ctrl-C is ignored here: the parent
decides, kills the workers and leaves the finished cells on disk.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path


def main() -> None:
    """Serve cells until stdin closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    from bfly_cli import transforms  # noqa: F401  (these imports come before the first cell, so its time is its own)

    from . import h5format, learn, targets  # noqa: F401
    from .report import jsonable
    from .sweep import Cell, run_cell

    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        cell = Cell(int(request["n"]), str(request["transform"]))
        record = run_cell(cell, str(request["solver"]), bool(request["bench"]), Path(request["out_dir"]))
        answers.write(json.dumps(jsonable(record)) + "\n")
        answers.flush()


if __name__ == "__main__":
    main()
