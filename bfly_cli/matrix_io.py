"""Reading a user's matrix file (.npy, .npz with one array, .h5 with one dataset), with checks.

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
from .sizes import check_size

MATRIX_SUFFIXES = (".npy", ".npz", ".h5", ".hdf5")


def looks_like_path(name: str) -> bool:
    """A transform argument is a file path when it has a matrix suffix or a path separator."""
    return name.lower().endswith(MATRIX_SUFFIXES) or "/" in name or "\\" in name


def load_matrix(path: str | Path) -> np.ndarray:
    """The square real or complex matrix stored in ``path``, as float64 or complex128."""
    path = Path(path)
    if not path.exists():
        raise BflyError(f"matrix file {str(path)!r} does not exist; give a .npy, .npz or .h5 file or a transform name (bfly list)")
    if not path.is_file():
        raise BflyError(f"{str(path)!r} is not a file; give a .npy, .npz or .h5 matrix file")
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
    except Exception as exc:  # numpy/h5py raise many types for corrupt files
        raise BflyError(f"cannot read {str(path)!r} as {suffix}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    return check_matrix(array, str(path))


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
    return np.load(path, allow_pickle=False)


def _read_npz(path: Path) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = list(archive.keys())
            if len(keys) != 1:
                raise BflyError(f"{str(path)!r} holds {len(keys)} arrays ({', '.join(keys) or 'none'}); save exactly one matrix")
            return archive[keys[0]]
    except zipfile.BadZipFile:
        raise BflyError(f"cannot read {str(path)!r}: not a valid .npz archive") from None


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
        handle.visititems(lambda name, obj: found.append(name) if isinstance(obj, h5py.Dataset) else None)
        if len(found) != 1:
            raise BflyError(f"{str(path)!r} holds {len(found)} datasets ({', '.join(found[:5]) or 'none'}); store exactly one matrix")
        return handle[found[0]][()]
