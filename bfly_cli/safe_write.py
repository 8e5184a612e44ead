"""Writing files without ever destroying what a user has: the one write path for every output.

Every file bfly writes (factor files, exports, ``apply`` outputs, sweep records and reports, plots)
goes through :func:`atomic_write`: the content is written to a temporary file beside the target,
fsynced, then renamed over it, so a crash, Ctrl-C or full disk never leaves a half-written file
under the user's name; an existing file is replaced only with ``force``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import BflyError


def check_writable(path: str | Path, force: bool) -> Path:
    """Fail early (before any work) when ``path`` cannot or must not be written."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise BflyError(f"cannot write {str(path)!r}: directory {str(parent)!r} does not exist; create it first or choose another -o")
    if not os.access(parent, os.W_OK):
        raise BflyError(f"cannot write {str(path)!r}: no write permission in {str(parent)!r}; choose another -o")
    if path.is_dir():
        raise BflyError(f"cannot write {str(path)!r}: it is a directory; give a file name with -o")
    if path.exists() and not force:
        raise BflyError(f"{str(path)!r} already exists; pass --force to overwrite it or choose another -o")
    return path


def atomic_write(path: str | Path, writer, force: bool = False) -> Path:
    """Call ``writer(tmp_path)`` then rename onto ``path``; a crash or Ctrl-C leaves no partial file."""
    path = check_writable(path, force)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        writer(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        if path.exists() and not force:  # appeared while we worked
            raise BflyError(f"{str(path)!r} already exists; pass --force to overwrite it or choose another -o")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
