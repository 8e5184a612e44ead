"""Reading a user's matrix file (.npy, .npz with one array, .h5 with one dataset), with checks.

Files are untrusted: what a file declares (shape, dtype) is checked before its data are read.

Every problem a file can have becomes one :class:`~bfly_cli.errors.BflyError` line that names the
file and what to do. The matrix's fingerprint (:func:`matrix_sha256`) is stored in factor files so
``verify`` can tell when the source matrix changed.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np

from .errors import BflyError
from .input_files import check_input_file, native, read_npy
from .sizes import check_memory, check_size

MATRIX_SUFFIXES = (".npy", ".npz", ".h5", ".hdf5")


def looks_like_path(name: str) -> bool:
    """A transform argument is a file path when it has a matrix suffix or a path separator."""
    return name.lower().endswith(MATRIX_SUFFIXES) or "/" in name or "\\" in name


def load_matrix(path: str | Path) -> np.ndarray:
    """The square real or complex matrix stored in ``path``, as float64 or complex128.

    The file is untrusted: its declared shape and dtype are checked (square, a power of two, fits
    in memory for learning) before its data are read, so a 1 KB compressed file cannot make bfly
    allocate gigabytes.
    """
    path = check_input_file(path, "matrix file", "give a .npy, .npz or .h5 file or a transform name (bfly list)")
    suffix = path.suffix.lower()
    if suffix not in MATRIX_SUFFIXES:
        raise BflyError(f"{str(path)!r}: unsupported file type {suffix!r}; use .npy, .npz or .h5")
    try:
        reader = {".npy": _read_npy, ".npz": _read_npz, ".h5": _read_h5, ".hdf5": _read_h5}[suffix]
        array = reader(path)
    except BflyError:
        raise
    except PermissionError:
        raise BflyError(f"cannot read {str(path)!r}: permission denied") from None
    except Exception as exc:  # numpy/h5py/zipfile raise many types for corrupt files
        raise BflyError(f"cannot read {str(path)!r} as {suffix}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    return check_matrix(array, str(path))


def check_declared(shape: tuple, dtype: np.dtype, label: str) -> None:
    """What a matrix file declares, checked before its data are read: numbers, square, a power of
    two, and a dense working set that fits in memory (the guard named transforms get)."""
    if dtype.kind not in "biufc":
        raise BflyError(f"{label}: holds {dtype} data, not numbers; store a real or complex float array")
    if len(shape) != 2:
        raise BflyError(f"{label}: array has {len(shape)} dimensions (shape {tuple(shape)}); expected one square 2-D matrix")
    rows, cols = (int(d) for d in shape)
    if rows * cols == 0:
        raise BflyError(f"{label}: the matrix is empty (shape {tuple(shape)})")
    if rows != cols:
        raise BflyError(f"{label}: matrix is {rows} x {cols}, not square; bfly factors square matrices")
    check_size(rows, label)
    check_memory(rows, complex_=dtype.kind == "c")


def check_matrix(array: np.ndarray, label: str) -> np.ndarray:
    """Validate shape, dtype and values; return a float64 or complex128 copy."""
    if array.dtype.kind not in "biufc":
        raise BflyError(f"{label}: holds {array.dtype} data, not numbers; store a real or complex float array")
    if array.ndim != 2:
        raise BflyError(f"{label}: array has {array.ndim} dimensions (shape {array.shape}); expected one square 2-D matrix")
    if array.size == 0:
        raise BflyError(f"{label}: the matrix is empty (shape {array.shape})")
    rows, cols = array.shape
    if rows != cols:
        raise BflyError(f"{label}: matrix is {rows} x {cols}, not square; bfly factors square matrices")
    check_size(rows, label)
    if not np.all(np.isfinite(array)):
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise BflyError(f"{label}: matrix holds {bad} NaN or Inf entries; replace them with finite values")
    return np.array(array, dtype=np.complex128 if array.dtype.kind == "c" else np.float64, order="C")


def matrix_sha256(matrix: np.ndarray) -> str:
    """Fingerprint of a matrix's values: sha256 of dtype, shape and C-order bytes (float64/complex128)."""
    canon = np.ascontiguousarray(matrix, dtype=np.complex128 if np.iscomplexobj(matrix) else np.float64)
    digest = hashlib.sha256(f"{canon.dtype.str}{canon.shape}".encode())
    digest.update(canon.tobytes())
    return digest.hexdigest()


def _read_npy(path: Path) -> np.ndarray:
    with open(path, "rb") as handle:
        return read_npy(handle, repr(str(path)), lambda shape, dtype: check_declared(shape, dtype, str(path)))


def _read_npz(path: Path) -> np.ndarray:
    """The one ``.npy`` member of a zip archive, header checked before its data are inflated."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise BflyError(f"cannot read {str(path)!r}: not a valid .npz archive") from None
    with archive:
        names = archive.namelist()
        if len(names) != 1:
            shown = ", ".join(name.removesuffix(".npy") for name in names[:5]) or "none"
            raise BflyError(f"{str(path)!r} holds {len(names)} arrays ({shown}); save exactly one matrix")
        if not names[0].endswith(".npy"):
            raise BflyError(f"{str(path)!r} holds a member {names[0]!r} that is not a .npy array; save the matrix with numpy.savez")
        with archive.open(names[0]) as member:
            label = f"{str(path)!r} (member {names[0]!r})"
            return read_npy(member, label, lambda shape, dtype: check_declared(shape, dtype, str(path)))


def _read_h5(path: Path) -> np.ndarray:
    import h5py

    try:
        handle = h5py.File(path, "r")
    except OSError:
        raise BflyError(f"cannot read {str(path)!r}: not a valid HDF5 file (truncated or another format)") from None
    with handle:
        if handle.attrs.get("format") == "bfly.factors":
            raise BflyError(f"{str(path)!r} is a bfly factor file, not a matrix; use 'bfly show' or 'bfly verify' on it")
        found: list[str] = []
        handle.visititems(lambda name, obj: _collect(found, name, obj, h5py.Dataset))
        if len(found) != 1:
            shown = ", ".join(found[:5]) or "none"
            raise BflyError(f"{str(path)!r} holds {'more than one' if len(found) > 1 else 'no'} dataset ({shown}); store exactly one matrix")
        dataset = handle[found[0]]
        if dataset.is_virtual or dataset.external:
            raise BflyError(f"{str(path)!r}: dataset {found[0]!r} keeps its data in other files; store the matrix in the file itself")
        check_declared(dataset.shape or (), dataset.dtype, str(path))
        return native(dataset[()])


def _collect(found: list[str], name: str, obj: object, dataset_type: type) -> bool | None:
    """Record dataset names; stop the walk (return True) once a second one shows there are too many."""
    if isinstance(obj, dataset_type):
        found.append(name)
    return True if len(found) > 1 else None
