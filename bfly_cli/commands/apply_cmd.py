"""``bfly apply``: y = M x for every vector along the last axis of a .npy array (files or pipes).

Input and output are binary ``.npy`` so the command composes in shell pipelines (``-`` is stdin
or stdout). The factors run at the input's precision: a float32 array stays single precision
(complex64 for complex factors) unless ``--dtype`` asks otherwise, because casting a large batch
up to float64 would double its size for accuracy the caller did not ask for.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from ._choices import ApplyDtype
from ._common import emit_json, guarded
from ._options import in_range, range_help

_DTYPES = ("float32", "float64", "complex64", "complex128")


@guarded
def apply(
    factors_path: Path = typer.Argument(..., metavar="FILE", help="A factor file written by 'bfly learn'."),
    input_path: str = typer.Argument(..., metavar="INPUT", help="A .npy array whose last axis has length N, or - for stdin."),
    output: Optional[str] = typer.Option(None, "-o", "--output", metavar="FILE", help="Output .npy file, or - for stdout [default: stdout, when it is not a terminal]."),
    dtype: Optional[ApplyDtype] = typer.Option(None, "--dtype", help="Compute in this dtype [default: the input's]."),
    threads: Optional[int] = typer.Option(None, "--threads", metavar="THREADS", callback=in_range("--threads"), help=range_help("--threads", "Threads over the batch [default: all cores].")),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing output file."),
    as_json: bool = typer.Option(False, "--json", is_eager=True, help="With -o FILE: print one JSON document (what was written) on stdout."),
) -> None:
    """Apply the factors to every vector along the last axis of INPUT and write the result as .npy."""
    import time

    from .. import h5format, kernel, read_guard
    from ..errors import BflyError

    if as_json and (output is None or output == "-"):
        raise BflyError("--json needs -o FILE: without it stdout carries the .npy result")
    out_path = _output_target(output, force, inputs=(factors_path, input_path))
    read_guard.check_readable(factors_path)
    factors = h5format.load(factors_path)
    x = _read_input(input_path, factors.n)
    in_dtype = _input_dtype(x, dtype)
    if x.ndim == 0 or x.shape[-1] != factors.n:
        shape = "a scalar" if x.ndim == 0 else f"shape {x.shape} (last axis {x.shape[-1]})"
        raise BflyError(f"input has {shape}, but the factors need vectors of length {factors.n} along the last axis")
    start = time.perf_counter()
    plan = kernel.Plan(factors, in_dtype)
    y = plan.apply(x, threads=threads)
    seconds = time.perf_counter() - start
    _write_output(y, out_path, force)
    if as_json:
        emit_json({"file": str(factors_path), "input": input_path, "output": str(out_path), "n": factors.n,
                   "structure": factors.structure, "shape": list(y.shape), "dtype": str(y.dtype),
                   "vectors": int(y.size // factors.n), "compiled": plan.compiled, "seconds": seconds})


def _output_target(output: Optional[str], force: bool, inputs: tuple = ()) -> Optional[Path]:
    """The output file (checked before any work, never one of the inputs), or None for stdout."""
    from .. import safe_write
    from ..errors import BflyError

    if output is None or output == "-":
        if output is None and sys.stdout.isatty():
            raise BflyError("refusing to write binary .npy to a terminal; give -o FILE, or pipe/redirect stdout")
        return None
    return safe_write.check_writable(output, force, inputs=inputs)


def _read_input(source: str, n: int):
    """The input array, header checked against the factors' N before its data are read (never pickles)."""
    from ..input_files import read_vectors

    return read_vectors(source, n)


def _input_dtype(x, dtype: Optional[str]):
    """The plan's input dtype: --dtype if given, else the array's own (one of the four kernel dtypes)."""
    import numpy as np

    from ..errors import BflyError

    if x.dtype.kind not in "biufc":
        raise BflyError(f"input has dtype {x.dtype}; it must hold numbers")
    if dtype is not None:
        if dtype not in _DTYPES:
            raise BflyError(f"--dtype {dtype!r} is not one of {', '.join(_DTYPES)}")
        return np.dtype(dtype)
    if x.dtype.name not in _DTYPES:
        raise BflyError(f"input has dtype {x.dtype}; use float32, float64, complex64 or complex128, or convert with --dtype")
    return x.dtype


def _write_output(y, out_path: Optional[Path], force: bool) -> None:
    """Write atomically to a file (nothing left behind on failure), or stream to stdout."""
    import numpy as np

    from .. import safe_write

    if out_path is None:
        np.lib.format.write_array(sys.stdout.buffer, y, allow_pickle=False)
        sys.stdout.buffer.flush()
        return

    def writer(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            np.lib.format.write_array(handle, y, allow_pickle=False)

    safe_write.atomic_write(out_path, writer, force=force)


def register(app: typer.Typer) -> None:
    app.command("apply")(apply)
