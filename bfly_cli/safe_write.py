"""Writing files without ever destroying what a user has: the one write path for every output.

Every file bfly writes (factor files, exports, ``apply`` outputs, sweep records and reports, plots)
goes through :func:`atomic_write`. What happens depends on what the output path is:

- a regular file or a new name: the content is written to a temporary file beside it, fsynced,
  given the final mode, then renamed over it, so a crash, signal or full disk never leaves a
  half-written file under the user's name; an existing file is replaced only with ``force``;
- a symbolic link: the same, beside the file the link points to (the link itself stays);
- a character device or FIFO (``/dev/null``, a named pipe, ``/dev/stdout``): written through,
  never renamed over (renaming would replace the device node or pipe with a regular file);
- a directory, block device or socket: refused.

Disk errors (full disk, quota, read-only file system, name too long) become one
:class:`~bfly_cli.errors.BflyError` line with the temporary file removed. Temporary files are named
``.NAME.PID.XXXXXXXX.tmp``: one left by a killed process (SIGKILL, power loss) is removed by the next
write to the same path once that process is gone; a live process's temp is never touched.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import stat
import tempfile
import threading
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

from .errors import BflyError

Writer = Callable[[str], None]
_DEFERRED_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))
_TEMP_SUFFIX = ".tmp"
_TEMP_EXTRA = 40  # bytes a temp name adds to the target's: ".", ".PID.", 8 random, ".tmp"
_FD_ALIASES = ("/proc/", "/dev/fd/")
_FIXES = {
    errno.ENOSPC: "free some disk space or choose another -o",
    errno.EDQUOT: "free some of your quota or choose another -o",
    errno.EROFS: "the file system is read-only; choose another -o",
    errno.EACCES: "check the permissions or choose another -o",
    errno.EPERM: "check the permissions or choose another -o",
    errno.ENAMETOOLONG: "choose a shorter -o",
}


# ----------------------------------------------------------------------------- checking a target


def check_writable(path: str | Path, force: bool, inputs: Iterable[Optional[str | Path]] = ()) -> Path:
    """Fail early (before any work) when ``path`` cannot or must not be written.

    ``inputs`` are the files the command reads: writing over one of them (by name, through a
    symlink or as a hard link) would destroy the data the output is computed from, so it is refused
    even with ``force``.
    """
    path = Path(path)
    info = _stat_or_none(path)
    if info is not None and is_special(info):
        return _check_special(path, info)
    _check_not_input(path, inputs)
    if info is not None and _is_fd_alias(path):  # /dev/stdout redirected to a file: written through
        return path
    target = resolved(path)
    _check_parent(path, target.parent)
    _check_name_length(path, target)
    if target.is_dir():
        raise BflyError(f"cannot write {str(path)!r}: it is a directory; give a file name with -o")
    if info is not None and not force:
        raise BflyError(f"{str(path)!r} already exists; pass --force to overwrite it or choose another -o")
    return path


def is_special(info: os.stat_result) -> bool:
    """Whether a path is something other than a regular file or a directory (device, FIFO, socket)."""
    return not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode))


def writes_through(path: str | Path) -> bool:
    """Whether ``path`` is written in place instead of replaced: a character device, a FIFO, or a
    name for one of the process's own descriptors (``/dev/stdout``, ``/proc/self/fd/1``), whatever
    that descriptor is (replacing the file behind a redirected stdout would detach it)."""
    info = _stat_or_none(Path(path))
    if info is None:
        return False
    return is_special(info) or _is_fd_alias(Path(path))


def resolved(path: str | Path) -> Path:
    """The file a write to ``path`` replaces: symlinks followed, so the temp lands beside it."""
    return Path(os.path.realpath(path))


def _stat_or_none(path: Path) -> Optional[os.stat_result]:
    """``os.stat`` (following links), None when nothing is there; a loop or bad link is one line."""
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise BflyError(f"cannot write {str(path)!r}: {exc.strerror}; choose another -o") from None


def _check_special(path: Path, info: os.stat_result) -> Path:
    """Devices and FIFOs are written through; disks and sockets are refused outright."""
    if stat.S_ISBLK(info.st_mode):
        raise BflyError(f"cannot write {str(path)!r}: it is a block device (a disk); write to a file instead")
    if not (stat.S_ISCHR(info.st_mode) or stat.S_ISFIFO(info.st_mode)):
        raise BflyError(f"cannot write {str(path)!r}: it is a socket or other special file; write to a file instead")
    if not os.access(path, os.W_OK):
        raise BflyError(f"cannot write {str(path)!r}: no write permission; choose another -o")
    return path


def _check_not_input(path: Path, inputs: Iterable[Optional[str | Path]]) -> None:
    """Refuse an output that is the same file as one of the inputs (names, links, hard links)."""
    for source in inputs:
        if source is None or str(source) == "-":
            continue
        try:
            same = os.path.samefile(path, source)
        except OSError:  # one of them does not exist: they cannot be the same file
            same = False
        if same:
            raise BflyError(f"output {str(path)!r} is the input {str(source)!r} itself (the same file): writing it "
                            f"would destroy the input; choose another -o")


def _check_parent(path: Path, parent: Path) -> None:
    if not parent.is_dir():
        raise BflyError(f"cannot write {str(path)!r}: directory {str(parent)!r} does not exist; create it first or choose another -o")
    if not os.access(parent, os.W_OK):
        raise BflyError(f"cannot write {str(path)!r}: no write permission in {str(parent)!r}; choose another -o")


def _check_name_length(path: Path, target: Path) -> None:
    """A name the file system cannot hold fails here, before the work, not at the rename."""
    if len(os.fsencode(target.name)) > _name_max(target.parent):
        raise BflyError(f"cannot write {str(path)!r}: the file name is too long for this file system; choose a shorter -o")


def _name_max(directory: Path) -> int:
    try:
        return int(os.pathconf(directory, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return 255


def _is_fd_alias(path: Path) -> bool:
    """Whether following ``path``'s links passes through ``/proc/*/fd`` or ``/dev/fd``."""
    current = os.path.abspath(path)
    for _ in range(40):
        if current.startswith(_FD_ALIASES):
            return True
        if not os.path.islink(current):
            return False
        current = os.path.normpath(os.path.join(os.path.dirname(current), os.readlink(current)))
    return False


# ----------------------------------------------------------------------------- writing


def atomic_write(path: str | Path, writer: Writer, force: bool = False,
                 inputs: Iterable[Optional[str | Path]] = ()) -> Path:
    """Have ``writer(tmp_path)`` write the content, then put it under ``path`` (see the module
    docstring for what each kind of path gets); a crash, signal or disk error leaves no partial
    file. Returns ``path`` as given."""
    path = check_writable(path, force, inputs)
    try:
        if writes_through(path):
            _write_through(path, writer)
        else:
            _replace(path, resolved(path), writer, force)
    except OSError as exc:
        raise BflyError(_os_error_line(path, exc)) from None
    return path


def _replace(path: Path, target: Path, writer: Writer, force: bool) -> None:
    """Temp beside ``target``, written, given the final mode, fsynced, renamed over ``target``."""
    sweep_stale_temps(target)
    mode = _final_mode(target)
    with _temp_file(target.parent, _temp_prefix(target.name)) as tmp:
        writer(tmp)
        os.chmod(tmp, mode)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        if target.exists() and not force:  # appeared while we worked
            raise BflyError(f"{str(path)!r} already exists; pass --force to overwrite it or choose another -o")
        os.replace(tmp, target)
    _fsync_directory(target.parent)


def _write_through(path: Path, writer: Writer) -> None:
    """Write a device or FIFO in place: the writer fills a private temp (writers may need to seek),
    whose bytes are then copied with plain file I/O (so ENOSPC from ``/dev/full`` is an OSError)."""
    with _temp_file(Path(tempfile.gettempdir()), ".bfly-spool.") as spool:
        writer(spool)
        with open(spool, "rb") as source, open(path, "wb") as sink:
            shutil.copyfileobj(source, sink)


def _os_error_line(path: Path, exc: OSError) -> str:
    """One line naming the path, the system's reason and what to do about it."""
    reason = exc.strerror or str(exc)
    fix = _FIXES.get(exc.errno, "check the path and the disk, or choose another -o")
    return f"cannot write {str(path)!r}: {reason}; {fix}"


def _final_mode(target: Path) -> int:
    """The replaced file's mode (``--force`` must not change who can read it), else what ``open``
    would give a new file: 0666 less the umask (``mkstemp`` alone gives 0600)."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        return 0o666 & ~current_umask()


def current_umask() -> int:
    """The process umask, read without changing it where Linux allows (no window for other threads)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable; file systems that cannot fsync a directory are skipped."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# ----------------------------------------------------------------------------- temporary files


def _temp_stem(name: str) -> str:
    """``.NAME.`` with NAME shortened so the whole temp name fits wherever NAME fits."""
    raw = os.fsencode(name)
    limit = 255 - _TEMP_EXTRA
    return "." + (os.fsdecode(raw[:limit]) if len(raw) > limit else name) + "."


def _temp_prefix(name: str) -> str:
    """``.NAME.PID.``: the PID tells a later write whether the temp's writer is still alive."""
    return f"{_temp_stem(name)}{os.getpid()}."


@contextlib.contextmanager
def _temp_file(directory: Path, prefix: str) -> Iterator[str]:
    """A new empty temp file, removed on any exit unless it was renamed away. Its creation runs with
    SIGINT/SIGTERM/SIGHUP deferred, so no signal can land between the file existing and the cleanup
    knowing its name."""
    tmp: Optional[str] = None
    try:
        with _signals_deferred():
            fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=_TEMP_SUFFIX, dir=directory)
            os.close(fd)
        yield tmp
    finally:
        if tmp is not None:
            with _signals_deferred(), contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM/SIGHUP for the block and re-deliver the first after it. Python runs
    signal handlers only in the main thread, and only it may change them; elsewhere nothing to do."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    held = [signum for signum in _DEFERRED_SIGNALS if signal.getsignal(signum) is not None]
    previous = {signum: signal.signal(signum, lambda s, _f: pending.append(s)) for signum in held}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if pending:
            signal.raise_signal(pending[0])


def sweep_stale_temps(target: str | Path) -> list[Path]:
    """Remove temps of writes to ``target`` whose process is gone (killed outright); return them.

    Only names of the form ``.NAME.PID.XXXXXXXX.tmp`` are considered, and a temp whose PID is a
    live process (any user's) is kept: it may be a write in progress.
    """
    target = Path(target)
    removed = []
    for entry in _candidate_temps(target):
        pid = _temp_pid(entry.name, target.name)
        if pid is not None and not _pid_alive(pid):
            with contextlib.suppress(FileNotFoundError, PermissionError):
                entry.unlink()
                removed.append(entry)
    return removed


def _candidate_temps(target: Path) -> list[Path]:
    stem = _temp_stem(target.name)
    try:
        names = os.listdir(target.parent)
    except OSError:
        return []
    return [target.parent / n for n in names if n.startswith(stem) and n.endswith(_TEMP_SUFFIX)]


def _temp_pid(entry: str, target_name: str) -> Optional[int]:
    """The PID in ``.NAME.PID.XXXXXXXX.tmp``, None for any other name (another target's temp)."""
    stem = _temp_stem(target_name)
    middle = entry[len(stem): -len(_TEMP_SUFFIX)]
    pid, dot, rest = middle.partition(".")
    if not (dot and pid.isdigit() and rest and "." not in rest):
        return None
    return int(pid)


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, another user's
        return True
    return True
