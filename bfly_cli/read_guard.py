"""A deadline on reading a factor file, for damage that makes the HDF5 library loop forever.

Some corruptions (a zeroed block inside the heap of a variable-length string attribute, found by
``benchmarks/fuzz_files.py``) send the HDF5 C library into an endless loop: no Python check can
run before it and no signal handler can interrupt it. So the commands that read a factor file
first let a forked child read and validate it (:func:`bfly_cli.h5format.load`), and wait at most
a deadline: a child that has not finished by then is killed and the file reported as damaged
(one line, exit 2). A child that finishes says only "readable"; the command then reads the file
itself, so every message and every result is the ordinary one. Costs one fork and one extra read
(milliseconds for the files bfly writes); where ``fork`` does not exist the check is skipped.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from .errors import FormatError

BASE_SECONDS = 5.0  # a valid file reads in well under a second; a loaded machine gets 5x slack and more
SECONDS_PER_GIB = 20.0  # plus reading time for very large files
_POLL = 0.005


def check_readable(path: str | Path, seconds: float | None = None) -> None:
    """Raise :class:`FormatError` when reading ``path`` does not finish within the deadline.

    Any other outcome (readable, or refused with an ordinary error) returns, so that the caller's
    own read reports it exactly as usual.
    """
    if not hasattr(os, "fork"):
        return
    path = Path(path)
    try:
        size = path.stat().st_size if path.is_file() else 0
    except OSError:
        return  # the caller's own read says what is wrong with it
    deadline = seconds if seconds is not None else BASE_SECONDS + SECONDS_PER_GIB * size / 2**30
    pid = os.fork()
    if pid == 0:  # the child: read, validate, report nothing but its exit status
        _child_read(path)
    if not _wait(pid, deadline):
        raise FormatError(f"{str(path)!r} is damaged: reading it did not finish within {deadline:.0f} s "
                          "(the HDF5 library loops on a corrupted heap); restore the file from a copy")


def _child_read(path: Path) -> None:
    """Read ``path`` and leave at once (``os._exit``: no cleanup of the parent's state)."""
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        from .h5format import load

        load(path)
    except BaseException:  # noqa: BLE001 - the parent's own read reports it
        code = 3
    finally:
        os._exit(code)


def _wait(pid: int, deadline: float) -> bool:
    """True when the child ended within ``deadline`` seconds; otherwise kill it and return False."""
    end = time.monotonic() + deadline
    try:
        while True:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                return True
            if time.monotonic() >= end:
                break
            time.sleep(_POLL)
    except BaseException:  # Ctrl-C, SIGTERM: never leave the child behind
        _reap(pid)
        raise
    _reap(pid)
    return False


def _reap(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass
