"""Files and streams a user hands to bfly are untrusted: look at them before reading them.

Two pieces every reader shares:

* :func:`check_input_file`: the path is a regular file, or one line saying what it is instead
  (missing, a directory, a FIFO or device). Opening a FIFO would block; calling a directory
  "missing" sends the user looking for the wrong problem.
* :func:`read_npy`: a ``.npy`` array from any binary stream (a file, a zip member, stdin),
  header first. The header declares shape and dtype for free, so the caller's checks (square,
  last axis N, fits in memory) run before a byte of payload is read; then exactly the declared
  payload is read, never "everything until EOF" (4 GB of garbage on stdin must not become 4 GB
  of memory). Nothing is ever unpickled, and numpy's own advice to load a file with
  ``allow_pickle=True`` never reaches the user. The result is in native byte order, because the
  compiled kernel and torch refuse big-endian arrays.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO, Callable, Optional

import numpy as np

from .errors import BflyError
from .sizes import available_bytes

HeaderCheck = Callable[[tuple, np.dtype], None]
_MAX_HEADER = 10_000  # numpy's own default limit on a .npy header


def check_input_file(path: str | Path, what: str, fix: str) -> Path:
    """``path`` if it is a regular file (symlinks followed); else a BflyError ending in ``fix``."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise BflyError(f"{what} {str(path)!r} does not exist; {fix}") from None
    except PermissionError:
        raise BflyError(f"cannot read {what} {str(path)!r}: permission denied") from None
    except OSError as exc:
        raise BflyError(f"cannot read {what} {str(path)!r}: {exc.strerror or exc}; {fix}") from None
    if stat.S_ISDIR(mode):
        raise BflyError(f"{what} {str(path)!r} is a directory, not a file; {fix}")
    if not stat.S_ISREG(mode):
        raise BflyError(f"{what} {str(path)!r} is not a regular file (a FIFO, device or socket); {fix}")
    if not os.access(path, os.R_OK):
        raise BflyError(f"cannot read {what} {str(path)!r}: permission denied")
    return path


def read_npy(stream: BinaryIO, name: str, check: Optional[HeaderCheck] = None) -> np.ndarray:
    """The array in ``stream`` (``name`` for messages), ``check(shape, dtype)`` run on the header."""
    shape, fortran, dtype = read_npy_header(stream, name)
    if check is not None:
        check(shape, dtype)
    count = int(np.prod(shape, dtype=object))
    need = count * dtype.itemsize
    if need > available_bytes():
        raise BflyError(f"{name} declares a {shape} {dtype} array ({need / 2**30:.1f} GiB), more than the memory available")
    flat = np.empty(count, dtype=dtype)
    _read_exactly(stream, flat.view(np.uint8) if count else None, need, name)
    array = flat.reshape(shape[::-1]).transpose() if fortran else flat.reshape(shape)
    return native(array)


def read_npy_header(stream: BinaryIO, name: str) -> tuple[tuple, bool, np.dtype]:
    """``(shape, fortran_order, dtype)`` from a .npy header; refuses what bfly never reads (pickled
    objects, records). Other non-numeric dtypes are the caller's to refuse, in its own words."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(stream)
        if version not in ((1, 0), (2, 0)):
            raise BflyError(f"cannot read {name}: .npy format version {version[0]}.{version[1]} is not one numeric arrays use; save it with numpy.save")
        read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, fortran, dtype = read_header(stream, max_header_size=_MAX_HEADER)
    except BflyError:
        raise
    except Exception as exc:  # the header is untrusted text: numpy's parser raises ValueError, SyntaxError, TokenError ...
        raise BflyError(f"cannot read {name}: not a readable .npy array ({_reason(exc)}); save it with numpy.save") from None
    if dtype.hasobject or dtype.kind == "V":
        raise BflyError(f"cannot read {name}: not a readable .npy array (it holds {_dtype_words(dtype)}); "
                        "save a numeric array with numpy.save")
    if any(int(d) < 0 for d in shape):
        raise BflyError(f"{name} declares an impossible shape {shape}; save it again with numpy.save")
    return tuple(int(d) for d in shape), bool(fortran), dtype


def native(array: np.ndarray) -> np.ndarray:
    """``array`` in native byte order (a copy only when it was not)."""
    if array.dtype.isnative:
        return array
    return array.astype(array.dtype.newbyteorder("="))


def _read_exactly(stream: BinaryIO, buffer: Optional[np.ndarray], size: int, name: str) -> None:
    """Fill ``buffer`` with exactly ``size`` bytes from ``stream``; a short stream is an error."""
    view = memoryview(buffer) if buffer is not None else memoryview(b"")
    got = 0
    while got < size:
        chunk = _read_into(stream, view[got:])
        if not chunk:
            raise BflyError(f"{name} is truncated: its header declares {size:,} bytes of data but only {got:,} follow; save it again with numpy.save")
        got += chunk


def _read_into(stream: BinaryIO, view: memoryview) -> int:
    """One ``readinto`` (or ``read`` for streams without it), at most 16 MiB at a time."""
    view = view[: 1 << 24]
    if hasattr(stream, "readinto"):
        return stream.readinto(view) or 0
    data = stream.read(len(view))
    view[: len(data)] = data
    return len(data)


def _dtype_words(dtype: np.dtype) -> str:
    if dtype.hasobject:
        return "Python objects, which bfly never unpickles"
    return "structured records, not numbers"


def _reason(exc: BaseException) -> str:
    """The first line of numpy's complaint, without any advice to unpickle."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if "magic" in text:
        return "it does not start with the .npy signature"
    if "pickle" in text.lower():
        return "unreadable header"
    return text if len(text) <= 120 else text[:117] + "..."


def read_vectors(source: str, n: int) -> np.ndarray:
    """``bfly apply``'s INPUT (a .npy file, or ``-`` for stdin): vectors of length ``n`` along the
    last axis, refused from the header (shape, dtype, size) before any payload is read."""
    import sys

    name = "stdin" if source == "-" else f"input file {source!r}"
    check = lambda shape, dtype: check_vectors(shape, dtype, n, name)  # noqa: E731
    if source != "-":
        path = check_input_file(source, "input file", "give a .npy array saved with numpy.save, or - for stdin")
        with open(path, "rb") as handle:
            return read_npy(handle, name, check)
    if sys.stdin is None or sys.stdin.isatty():
        raise BflyError("INPUT is - but stdin is a terminal; pipe a .npy array in")
    return read_npy(sys.stdin.buffer, name, check)


def check_vectors(shape: tuple, dtype: np.dtype, n: int, name: str) -> None:
    """A batch of length-``n`` numeric vectors whose input and result fit in memory together
    (the result is at most twice the input's size: real float32 in, complex64 out)."""
    if dtype.kind not in "biufc":
        raise BflyError(f"{name} has dtype {dtype}; it must hold numbers")
    if not shape or shape[-1] != n:
        what = "a scalar" if not shape else f"shape {shape} (last axis {shape[-1]})"
        raise BflyError(f"{name} has {what}, but the factors need vectors of length {n} along the last axis")
    need = 3 * int(np.prod(shape, dtype=object)) * max(dtype.itemsize, 4)
    have = available_bytes()
    if need > have:
        raise BflyError(f"{name} declares a {shape} {dtype} array: with its result that needs about "
                        f"{need / 2**30:.1f} GiB, but {have / 2**30:.1f} GiB is available; apply it in smaller batches")
