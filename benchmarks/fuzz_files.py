"""Fuzz every command that reads a file with mutated factor files and matrix files (#13).

Valid files are made first, at N = 8: factor files learned by ``bfly learn`` (dft, hadamard, dct,
convolution, randn, and one learned from a matrix file) plus one built with the library holding
every step kind but rank2 (``RDBP``), and matrix files (.npy real and complex, .npz, .h5) and an
``apply`` input. Each mutant is a copy of one of them, changed by one seeded mutation:

* bytes: bit flips (1 to 8), truncation, a zeroed block;
* crafted with h5py: registered or unknown attributes set to values of the wrong type (strings
  for numbers, arrays, NaN, huge ints, bools, bytes, extended precision, complex),
  ``transform_options`` no transform accepts, attributes deleted, step kinds changed, step data replaced (huge declared shapes in a few KB, wrong shapes,
  wrong or non-native dtypes, scalars, empty dataspaces, NaN, external storage, strings, groups),
  links (soft-link loops, external links, hard-link cycles, /steps missing or a dataset);
* crafted matrix files: .npy headers with hostile shapes and dtypes and short or long payloads,
  .npz archives with several, non-.npy, pickled or huge members, .h5 files with huge compressed,
  string, linked, external or several datasets.

Every reading command then runs on each mutant, in-process through typer's CliRunner (in a child
forked per mutant, killed at the deadline: a damaged HDF5 file can hang the HDF5 library in C): ``show``,
``show --json``, ``verify``, ``export`` (a random format), ``bench --repeat 1 --batch 1`` and
``apply`` on factor files; ``learn``, ``analyze`` and ``apply`` (file and stdin) on matrix
files. A sample also runs as real subprocesses of the ``bfly`` console script, whose peak memory
is measured exactly (``os.wait4``). A run violates the contract when it shows a traceback, exits
outside {0, 1, 2}, takes over 10 s, or grows the peak memory by over 1 GiB (in-process: the
process's high-water mark; an "out of memory" error counts too). The counts are printed; the
exit status is 1 when there was any violation. Usage::

    python benchmarks/fuzz_files.py                        # 1,000 mutants, seed 0, 10 subprocess runs
    python benchmarks/fuzz_files.py --mutants 40 --seed 3 --subprocess 2
    python benchmarks/fuzz_files.py --keep /tmp/fuzz       # keep the mutants that violated

In-process runs are guarded by an address-space limit (RLIMIT_AS: the size after warm-up plus
``--headroom-gb``, default 3) so a regression cannot take the machine down; ``--no-rlimit``
drops it (the test suite runs the fuzzer in its own process, without it).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pickle
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import h5py
import numpy as np

N = 8
LIMIT_S = 10.0
LIMIT_BYTES = 1 << 30
EXPORT_FORMATS = ("json", "npz", "mat", "pt")
BFLY = Path(sys.executable).parent / "bfly"


class RunTimeout(BaseException):
    """Raised by the alarm inside a run: a BaseException, so no ``except Exception`` swallows it."""


@dataclass
class Tally:
    """What the runs did; ``violations`` lists (what, mutant, command) for the report."""

    mutants: Counter = field(default_factory=Counter)
    exits: Counter = field(default_factory=Counter)
    runs: int = 0
    subprocess_runs: int = 0
    multi_line_errors: int = 0
    slowest: tuple[float, str] = (0.0, "")
    peak_subprocess_rss: int = 0
    violations: list[tuple[str, str, str]] = field(default_factory=list)

    def count(self, kind: str) -> int:
        return sum(1 for v in self.violations if v[0] == kind)


# ---- valid files ------------------------------------------------------------------------------


def make_bases(root: Path, invoke: Callable) -> dict[str, list[Path]]:
    """Valid factor files, matrix files and an apply input under ``root``."""
    rng = np.random.default_rng(0)
    np.save(root / "x.npy", rng.standard_normal((3, N)))
    np.save(root / "real.npy", rng.standard_normal((N, N)))
    np.save(root / "complex.npy", rng.standard_normal((N, N)) + 1j * rng.standard_normal((N, N)))
    np.savez(root / "one.npz", m=rng.standard_normal((N, N)))
    with h5py.File(root / "one.h5", "w") as handle:
        handle.create_dataset("m", data=rng.standard_normal((N, N)), compression="gzip")
    factors = []
    for name in ("dft", "hadamard", "dct", "convolution", "randn", str(root / "real.npy")):
        out = root / f"base-{Path(name).stem}.h5"
        result = invoke(["learn", name, "--n", str(N), "-o", str(out), "-q", "--force"])
        if result.exit_code != 0:
            raise SystemExit(f"cannot make the base file for {name}: {result.output}")
        factors.append(out)
    factors.append(_every_kind(root / "base-mixed.h5", rng))
    matrices = [root / "real.npy", root / "complex.npy", root / "one.npz", root / "one.h5"]
    return {"factor": factors, "matrix": matrices, "x": [root / "x.npy"]}


def _every_kind(path: Path, rng: np.random.Generator) -> Path:
    """A file built through the library: permutation, complex butterfly, diagonal, real part."""
    from bfly_cli import h5format
    from bfly_cli.factors import Factors, Step

    steps = [Step("permutation", rng.permutation(N)),
             Step("butterfly", rng.standard_normal((3, N // 2, 2, 2)) + 1j * rng.standard_normal((3, N // 2, 2, 2))),
             Step("diagonal", rng.standard_normal(N) + 0j), Step("real")]
    meta = {"transform": "dft", "transform_options": {}, "solver": "hand", "rmse": 1.0, "rel_error": 1.0,
            "max_abs_error": 1.0, "seconds": 0.0, "seed": 0, "bfly_version": "0", "created": "-", "command": "fuzz"}
    h5format.save(Factors(N, steps, meta), path, force=True)
    return path


# ---- byte mutations (any file) ----------------------------------------------------------------


def flip_bits(path: Path, rng: np.random.Generator) -> str:
    data = bytearray(path.read_bytes())
    count = int(rng.integers(1, 9))
    for _ in range(count):
        data[int(rng.integers(len(data)))] ^= 1 << int(rng.integers(8))
    path.write_bytes(bytes(data))
    return f"flip {count} bits"


def truncate(path: Path, rng: np.random.Generator) -> str:
    size = path.stat().st_size
    keep = int(rng.integers(size))
    with open(path, "r+b") as handle:
        handle.truncate(keep)
    return f"truncate to {keep} of {size}"


def zero_block(path: Path, rng: np.random.Generator) -> str:
    data = bytearray(path.read_bytes())
    start, length = int(rng.integers(len(data))), int(rng.integers(16, 513))
    data[start:start + length] = bytes(len(data[start:start + length]))
    path.write_bytes(bytes(data))
    return f"zero {length} bytes at {start}"


# ---- crafted factor files ---------------------------------------------------------------------


def _hostile_values() -> list[Any]:
    return ["abc", "", "{", "[1, 2]", '{"a": 1}', "null", "16", "8", 16.5, -1, 0, 8, 1 << 40, 1 << 62, True, False,
            float("nan"), float("inf"), np.arange(3), np.zeros((2, 2)), np.array([b"a", b"bc"]), np.array([8]),
            np.float16(1.5), np.longdouble(1.5), np.complex128(1 + 2j), "x" * 5000, np.int8(-3),
            np.uint64(2**63), b"\xff\xfe", '{"seed": "x"}', '{"norm": 3}', '{"filter": "/dev/zero"}', '[{"a": [1, {}]}]']


def set_attribute(path: Path, rng: np.random.Generator) -> str:
    from bfly_cli.metadata import KEYS

    keys = [*KEYS, "future_key", "kind"]
    key = keys[int(rng.integers(len(keys)))]
    values = _hostile_values()
    value = values[int(rng.integers(len(values)))]
    with h5py.File(path, "r+") as handle:
        target = handle["steps/0"] if key == "kind" and "steps/0" in handle else handle
        target.attrs[key] = value
    return f"attribute {key} = {_short(value)}"


def set_options(path: Path, rng: np.random.Generator) -> str:
    """transform_options that parse as a JSON object but hold values no transform accepts."""
    keys = ["seed", "filter", "norm", "type", "foo"]
    values = ["x", 3, -1, 1.5, True, None, [1], {"a": 1}, "/dev/zero", "/", "ortho", "paper", 1 << 70, "3"]
    options = {keys[int(rng.integers(len(keys)))]: values[int(rng.integers(len(values)))] for _ in range(int(rng.integers(1, 3)))}
    with h5py.File(path, "r+") as handle:
        handle.attrs["transform_options"] = json.dumps(options)
    return f"transform_options {json.dumps(options)}"


def delete_attribute(path: Path, rng: np.random.Generator) -> str:
    with h5py.File(path, "r+") as handle:
        names = list(handle.attrs)
        name = names[int(rng.integers(len(names)))]
        del handle.attrs[name]
    return f"delete attribute {name}"


def replace_data(path: Path, rng: np.random.Generator) -> str:
    with h5py.File(path, "r+") as handle:
        steps = [name for name in handle["steps"] if "data" in handle["steps"][name]]
        step = handle["steps"][steps[int(rng.integers(len(steps)))]]
        old = step["data"][()]
        del step["data"]
        how = _DATA_MUTATIONS[int(rng.integers(len(_DATA_MUTATIONS)))]
        return f"step {step.name} data: " + how(step, old, rng, path.parent)


def _huge(step, old, rng, folder) -> str:
    shape = [(1 << 26, 2, 2, 2), (1 << 20, 1 << 19, 2, 2), (1 << 30,), (3, 1 << 28, 2, 2)][int(rng.integers(4))]
    chunks = tuple(min(d, 64) for d in shape)
    step.create_dataset("data", shape=shape, dtype="c16" if rng.integers(2) else "i8", chunks=chunks, compression="gzip")
    return f"huge declared {shape}"


def _reshaped(step, old, rng, folder) -> str:
    shape = tuple(int(d) for d in rng.integers(1, 6, size=int(rng.integers(1, 5))))
    step.create_dataset("data", data=np.resize(old, shape))
    return f"shape {shape}"


def _retyped(step, old, rng, folder) -> str:
    dtypes = [">f8", ">c16", "<f2", "<i4", "|u1", ">i8", "|b1", "S4", np.longdouble, "<c8", "<f4", ">u2", "|i1"]
    dtype = np.dtype(dtypes[int(rng.integers(len(dtypes)))])
    data = old.real if dtype.kind not in "c" and np.iscomplexobj(old) else old
    step.create_dataset("data", data=data.astype(dtype) if dtype.kind != "S" else data.astype(str).astype(dtype))
    return f"dtype {dtype.str}"


def _odd(step, old, rng, folder) -> str:
    choice = int(rng.integers(7))
    if choice == 0:
        step.create_dataset("data", data=1.0)
    elif choice == 1:
        step.create_dataset("data", data=h5py.Empty("f8"))
    elif choice == 2:
        bad = np.array(old, dtype=np.result_type(old, np.float64))
        bad.flat[0] = np.nan
        step.create_dataset("data", data=bad)
    elif choice == 3:
        raw = folder / f"external-{int(rng.integers(1 << 30))}.bin"
        raw.write_bytes(np.asarray(old).tobytes())
        step.create_dataset("data", shape=old.shape, dtype=old.dtype, external=[(str(raw), 0, h5py.h5f.UNLIMITED)])
    elif choice == 4:
        step.create_dataset("data", data=np.array(["a"] * old.size, dtype=h5py.string_dtype()).reshape(old.shape))
    elif choice == 5:
        step.create_group("data")
    else:
        step.attrs["data"] = np.asarray(old).ravel()[:16].real
    return ["scalar", "empty dataspace", "NaN", "external storage", "strings", "a group", "an attribute"][choice]


_DATA_MUTATIONS = [_huge, _reshaped, _retyped, _odd]


def relink(path: Path, rng: np.random.Generator) -> str:
    choice = int(rng.integers(8))
    with h5py.File(path, "r+") as handle:
        names = sorted(handle["steps"], key=int)
        step = names[int(rng.integers(len(names)))]
        if choice == 0:
            del handle["steps"]
            handle["steps"] = h5py.SoftLink("/steps")
        elif choice == 1:
            del handle[f"steps/{step}"]
            handle[f"steps/{step}"] = h5py.SoftLink(f"/steps/{step}")
        elif choice == 2 and "data" in handle[f"steps/{step}"]:
            del handle[f"steps/{step}/data"]
            handle[f"steps/{step}/data"] = h5py.SoftLink(f"/steps/{step}/data")
        elif choice == 3:
            del handle[f"steps/{step}"]
            handle[f"steps/{step}"] = h5py.ExternalLink(str(path), "/steps/0")
        elif choice == 4:
            handle[f"steps/{step}/loop"] = handle["steps"]
            handle[f"steps/{len(names)}"] = handle["steps"]
        elif choice == 5:
            del handle["steps"]
            handle["steps"] = np.arange(4)
        elif choice == 6:
            del handle["steps"]
        else:
            handle.move(f"steps/{step}", f"steps/{['x', '01', '-1', '99'][int(rng.integers(4))]}")
    return f"links #{choice} at step {step}"


FACTOR_MUTATIONS = [flip_bits, flip_bits, truncate, zero_block, set_attribute, set_attribute, set_attribute,
                    set_options, delete_attribute, replace_data, replace_data, relink]


# ---- crafted matrix files ---------------------------------------------------------------------


def craft_npy(path: Path, rng: np.random.Generator) -> str:
    """A .npy file (or the one member of a .npz) whose header says anything."""
    shapes = [(), (N,), (N, N), (N, N - 1), (3, N), (0, 0), (1 << 20, 1 << 20), (1 << 40, N), (N, N, N), (1 << 62, 4)]
    descrs = ["<f8", ">f8", "<c16", ">c16", "|u1", "|b1", "<f2", "<f16", "|O", "<U3", "|V8", "|S3", "<m8", "<f4"]
    shape = shapes[int(rng.integers(len(shapes)))]
    descr = descrs[int(rng.integers(len(descrs)))]
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": descr, "fortran_order": bool(rng.integers(2)), "shape": shape})
    size = int(np.prod(shape, dtype=object)) * max(np.dtype(descr).itemsize, 1) if descr != "|O" else 64
    payload = int([0, min(size, 1 << 16), min(size // 2, 1 << 16), min(size + 7, 1 << 16)][int(rng.integers(4))])
    body = header.getvalue() + rng.bytes(payload)
    _store(path, body, rng)
    return f"npy header {descr} {shape}, {payload} payload bytes"


def craft_raw_header(path: Path, rng: np.random.Generator) -> str:
    """A header that is not a valid dict at all (syntax, keys, lengths, version)."""
    texts = [b"{'descr': '<f8'", b"{'descr': 'garbage', 'fortran_order': False, 'shape': (8, 8), }",
             b"{'descr': '<f8', 'fortran_order': False, 'shape': (8, -8), }", b"__import__('os')",
             b"{'descr': '<f8', 'fortran_order': 'yes', 'shape': (8, 8), }", b"{'shape': (8, 8)}"]
    text = texts[int(rng.integers(len(texts)))]
    version = [b"\x01\x00", b"\x02\x00", b"\x03\x00", b"\x09\x09"][int(rng.integers(4))]
    length = (len(text) + 1).to_bytes(4 if version != b"\x01\x00" else 2, "little")
    _store(path, b"\x93NUMPY" + version + length + text + b"\n", rng)
    return f"raw header {version!r} {text[:30]!r}"


def _store(path: Path, body: bytes, rng: np.random.Generator) -> None:
    """``body`` as the file, or as the one member of an .npz when ``path`` is one."""
    if path.suffix != ".npz":
        path.write_bytes(body)
        return
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED if rng.integers(2) else zipfile.ZIP_STORED) as archive:
        archive.writestr("m.npy", body)


def craft_npz(path: Path, rng: np.random.Generator) -> str:
    choice = int(rng.integers(5))
    target = path.with_suffix(".npz")
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        if choice == 0:
            archive.writestr("a.npy", _npy_bytes(np.eye(N)))
            archive.writestr("b.npy", _npy_bytes(np.eye(N)))
        elif choice == 1:
            archive.writestr("readme.txt", b"hello")
        elif choice == 2:
            archive.writestr("m.npy", _npy_bytes(np.array([{}, []], dtype=object), allow_pickle=True))
        elif choice == 3:
            archive.writestr("../../m.npy", _npy_bytes(np.eye(N)))
        else:
            archive.writestr("m.npy", _npy_bytes(np.zeros((1 << 12, 1 << 12))))  # 128 MiB inflated from ~130 KB
    if target != path:
        path.unlink()
    return f"npz #{choice}"


def _npy_bytes(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def craft_h5(path: Path, rng: np.random.Generator) -> str:
    choice = int(rng.integers(8))
    target = path.with_suffix(".h5")
    with h5py.File(target, "w") as handle:
        if choice == 0:
            handle.create_dataset("m", shape=(1 << 15, 1 << 15), dtype="c16", chunks=(64, 64), compression="gzip")
        elif choice == 1:
            handle["a"], handle["b"] = np.eye(N), np.eye(N)
        elif choice == 2:
            handle.create_dataset("m", data=np.array([["a"] * N] * N, dtype=h5py.string_dtype()))
        elif choice == 3:
            handle["m"] = h5py.SoftLink("/m")
        elif choice == 4:
            handle["g/m"] = np.eye(N)
            handle["g/loop"] = handle["g"]
        elif choice == 5:
            raw = path.parent / f"external-{int(rng.integers(1 << 30))}.bin"
            raw.write_bytes(np.eye(N).tobytes())
            handle.create_dataset("m", shape=(N, N), dtype="f8", external=[(str(raw), 0, h5py.h5f.UNLIMITED)])
        elif choice == 6:
            handle["m"] = np.eye(N).astype(">f8")
            handle.attrs["format"] = ["bfly.factors", np.arange(2), 3][int(rng.integers(3))]
        else:
            handle["m"] = h5py.ExternalLink("/nonexistent/file.h5", "/m")
    if target != path:
        path.unlink()
    return f"h5 #{choice}"


MATRIX_MUTATIONS = [flip_bits, flip_bits, truncate, zero_block, craft_npy, craft_npy, craft_raw_header, craft_npz, craft_h5]


# ---- running ----------------------------------------------------------------------------------


def commands_for(kind: str, path: Path, bases: dict[str, list[Path]], out: Path, rng: np.random.Generator) -> list[tuple[list[str], bytes | None]]:
    """The reading commands to run on a mutant, with their stdin (None: none)."""
    p = str(path)
    if kind == "factor":
        fmt = EXPORT_FORMATS[int(rng.integers(len(EXPORT_FORMATS)))]
        return [(["show", "--json", p], None), (["show", p], None), (["verify", p], None),
                (["export", p, "-f", fmt, "-o", str(out / f"e.{fmt}"), "--force"], None),
                (["bench", p, "--repeat", "1", "--batch", "1", "--json"], None),
                (["apply", p, str(bases["x"][0]), "-o", str(out / "y.npy"), "--force"], None)]
    runs = [(["learn", p, "-o", str(out / "l.h5"), "-q", "--force"], None), (["analyze", p], None)]
    if path.suffix == ".npy":
        factor = str(bases["factor"][0])
        runs.append((["apply", factor, p, "-o", str(out / "y.npy"), "--force"], None))
        if path.stat().st_size < (1 << 20):
            runs.append((["apply", factor, "-", "-o", str(out / "y.npy"), "--force"], path.read_bytes()))
    return runs


def run_in_process(runner, app, args: list[str], stdin: bytes | None, label: str, tally: Tally) -> None:
    """One command through CliRunner, judged: traceback, exit code, time, memory."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    start = time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, LIMIT_S)
    try:
        result = runner.invoke(app, args, input=stdin)
    except RunTimeout:
        tally.violations.append(("timeout", label, " ".join(args)))
        return
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    seconds = time.monotonic() - start
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    _judge(args, label, result.exit_code, result.stderr + result.stdout, result.exception, seconds, grown, tally, result.stderr)


def run_isolated(work: Callable[[Tally], Any], label: str, count: int, tally: Tally) -> None:
    """``work`` in a forked child with a deadline, its counts merged into ``tally``.

    A damaged HDF5 file can send the HDF5 library into an endless loop inside one C call, where
    no signal handler runs: only a separate process can be stopped. The fork shares the parent's
    imports, so a mutant still costs milliseconds.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run, report, leave without any cleanup of the parent's state
        part = Tally()
        try:
            os.close(read_end)
            work(part)
        except BaseException as exc:  # whatever happens, the child must never return into the loop
            part.violations.append(("crash", label, f"{type(exc).__name__}: {str(exc)[:200]}"))
        finally:
            with os.fdopen(write_end, "wb") as out:
                pickle.dump(part, out)
            os._exit(0)
    os.close(write_end)
    part = _collect(read_end, pid, count * LIMIT_S + 5)
    if part is None:
        tally.runs += 1
        tally.violations.append(("timeout", label, f"a run did not end within {LIMIT_S:.0f} s (killed)"))
        return
    _merge(tally, part)


def _collect(fd: int, pid: int, deadline_s: float) -> "Tally | None":
    """The child's Tally, or None when it had to be killed at the deadline."""
    chunks, end = [], time.monotonic() + deadline_s
    with os.fdopen(fd, "rb") as pipe:
        while True:
            ready, _, _ = select.select([pipe], [], [], max(0.0, end - time.monotonic()))
            if not ready:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return None
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    os.waitpid(pid, 0)
    return pickle.loads(b"".join(chunks)) if chunks else Tally(violations=[("crash", "child", "no report")])


def _merge(tally: Tally, part: Tally) -> None:
    tally.exits.update(part.exits)
    tally.runs += part.runs
    tally.subprocess_runs += part.subprocess_runs
    tally.multi_line_errors += part.multi_line_errors
    tally.slowest = max(tally.slowest, part.slowest)
    tally.peak_subprocess_rss = max(tally.peak_subprocess_rss, part.peak_subprocess_rss)
    tally.violations += part.violations


def _judge(args, label, code, output, exception, seconds, grown, tally: Tally, stderr: str = "") -> None:
    command = " ".join(a if len(a) < 60 else "..." + a[-40:] for a in args)
    tally.runs += 1
    tally.exits[code if code in (0, 1, 2) else "other"] += 1
    tally.slowest = max(tally.slowest, (seconds, command))
    if exception is not None and not isinstance(exception, SystemExit):
        tally.violations.append(("traceback", label, f"{command}: {type(exception).__name__}: {str(exception)[:200]}"))
    elif "Traceback (most recent call last)" in output:
        tally.violations.append(("traceback", label, f"{command}: {output[-300:]}"))
    if code not in (0, 1, 2):
        tally.violations.append(("exit code", label, f"{command}: exit {code}"))
    if seconds > LIMIT_S:
        tally.violations.append(("timeout", label, f"{command}: {seconds:.1f} s"))
    if grown > LIMIT_BYTES or "out of memory" in output:
        tally.violations.append(("memory", label, f"{command}: peak grew {grown / 2**20:.0f} MiB"))
    if code == 2 and stderr.strip().count("\n") > 0:
        tally.multi_line_errors += 1


def run_subprocess(args: list[str], stdin: bytes | None, label: str, tally: Tally) -> None:
    """One command as a real process; its peak RSS read from wait4, killed past the time limit."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as inp:
        inp.write(stdin or b"")
        inp.seek(0)
        start = time.monotonic()
        proc = subprocess.Popen([str(BFLY), *args], stdin=inp, stdout=out, stderr=err, start_new_session=True)
        timed_out, (status, usage) = _wait(proc)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        errors = err.read().decode("utf-8", "replace")
        output = errors + out.read().decode("utf-8", "replace")
    rss = usage.ru_maxrss * 1024
    tally.subprocess_runs += 1
    tally.peak_subprocess_rss = max(tally.peak_subprocess_rss, rss)
    if timed_out:
        tally.violations.append(("timeout", label, "subprocess " + " ".join(args)))
        return
    _judge(["(subprocess)", *args], label, proc.returncode, output, None, time.monotonic() - start, rss, tally, errors)


def _wait(proc: subprocess.Popen) -> tuple[bool, tuple[int, Any]]:
    deadline = time.monotonic() + LIMIT_S
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            return False, (status, usage)
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            _, status, usage = os.wait4(proc.pid, 0)
            return True, (status, usage)
        time.sleep(0.01)


# ---- the campaign -----------------------------------------------------------------------------


def fuzz(mutants: int, seed: int, sample: int, keep: Path | None, rlimit_headroom: float | None, quiet: bool) -> Tally:
    from typer.testing import CliRunner

    from bfly_cli.cli import app

    runner, tally = CliRunner(), Tally()
    rng = np.random.default_rng(seed)
    signal.signal(signal.SIGALRM, _alarm)
    with tempfile.TemporaryDirectory(prefix="bfly-fuzz-") as tmp:
        root = Path(tmp)
        bases = make_bases(root, lambda args: runner.invoke(app, args))
        _warm_up(runner, app, bases, root)
        if rlimit_headroom is not None:
            _limit_address_space(rlimit_headroom)
        chosen_for_subprocess = set(rng.choice(mutants, size=min(sample, mutants), replace=False).tolist())
        for index in range(mutants):
            kind = "factor" if rng.random() < 0.6 else "matrix"
            label, path = _mutant(kind, index, bases, root, rng)
            tally.mutants[kind] += 1
            before = len(tally.violations)
            runs = commands_for(kind, path, bases, root, rng)
            run_isolated(lambda part: [run_in_process(runner, app, a, i, label, part) for a, i in runs], label, len(runs), tally)
            if index in chosen_for_subprocess:
                args, stdin = runs[int(rng.integers(len(runs)))]
                if args[0] != "bench":  # bench imports torch: seconds of start-up, not of reading
                    run_subprocess(args, stdin, label, tally)
            if keep is not None and len(tally.violations) > before:
                keep.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, keep / f"{index:05d}-{path.name}")
            if not quiet and (index + 1) % 100 == 0:
                print(f"  {index + 1} mutants, {tally.runs} runs, {len(tally.violations)} violations", file=sys.stderr)
    return tally


def _mutant(kind: str, index: int, bases, root: Path, rng: np.random.Generator) -> tuple[str, Path]:
    """A fresh copy of a random base file of ``kind``, mutated once; its label says how."""
    sources = bases[kind] + (bases["x"] if kind == "matrix" else [])
    source = sources[int(rng.integers(len(sources)))]
    path = root / f"mutant-{index}{source.suffix}"
    shutil.copy(source, path)
    mutations = FACTOR_MUTATIONS if kind == "factor" else MATRIX_MUTATIONS
    mutation = mutations[int(rng.integers(len(mutations)))]
    try:
        how = mutation(path, rng)
    except Exception as exc:  # h5py refused to write a crafted value: the plain copy is still a case
        how = f"{mutation.__name__} not applied ({type(exc).__name__})"
    for suffix in (".npz", ".h5"):  # the matrix crafters may change the suffix
        if not path.exists() and path.with_suffix(suffix).exists():
            path = path.with_suffix(suffix)
    return f"#{index} {source.name}: {how}", path


def _warm_up(runner, app, bases, root: Path) -> None:
    """Import everything once (torch for bench), so the first mutant's time is its own."""
    factor = str(bases["factor"][0])
    runner.invoke(app, ["bench", factor, "--repeat", "1", "--batch", "1", "--json"])
    runner.invoke(app, ["verify", factor])
    runner.invoke(app, ["export", factor, "-f", "pt", "-o", str(root / "w.pt"), "--force"])


def _alarm(signum, frame) -> None:
    raise RunTimeout()


def _limit_address_space(headroom_gb: float) -> None:
    """Cap this process's address space at its size now plus the headroom (a safety net)."""
    with open("/proc/self/status") as handle:
        size = next(int(line.split()[1]) * 1024 for line in handle if line.startswith("VmSize:"))
    limit = size + int(headroom_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))


def report(tally: Tally, mutants: int, seed: int) -> str:
    exits = ", ".join(f"{code}: {tally.exits[code]}" for code in (0, 1, 2, "other"))
    lines = [
        f"mutants: {mutants} (factor files {tally.mutants['factor']}, matrix files {tally.mutants['matrix']}), seed {seed}",
        f"runs: {tally.runs - tally.subprocess_runs} in-process, {tally.subprocess_runs} subprocess "
        f"(peak RSS of a subprocess {tally.peak_subprocess_rss / 2**20:.0f} MiB)",
        f"exits: {exits}",
        f"tracebacks: {tally.count('traceback')}",
        f"bad exit codes: {tally.count('exit code')}",
        f"timeouts (> {LIMIT_S:.0f} s): {tally.count('timeout')}",
        f"memory (> {LIMIT_BYTES >> 30} GiB or out of memory): {tally.count('memory')}",
        f"crashes (a child ended without its report): {tally.count('crash')}",
        f"slowest run: {tally.slowest[0]:.2f} s ({tally.slowest[1][:100]})",
        f"exit-2 errors longer than one line: {tally.multi_line_errors}",
    ]
    lines += [f"  {what}: {label}: {detail}" for what, label, detail in tally.violations[:20]]
    return "\n".join(lines)


def _short(value: Any) -> str:
    text = " ".join(repr(value).split())
    return text if len(text) <= 40 else text[:37] + "..."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mutants", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--subprocess", type=int, default=10, help="mutants also run as a real process (one command each)")
    parser.add_argument("--keep", type=Path, default=None, help="copy every mutant that violated here")
    parser.add_argument("--headroom-gb", type=float, default=3.0, help="address-space limit above the warmed-up size")
    parser.add_argument("--no-rlimit", action="store_true", help="no address-space limit (when run inside another program)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    headroom = None if args.no_rlimit else args.headroom_gb
    tally = fuzz(args.mutants, args.seed, args.subprocess, args.keep, headroom, args.quiet)
    print(report(tally, args.mutants, args.seed))
    return 1 if tally.violations else 0


if __name__ == "__main__":
    sys.exit(main())
