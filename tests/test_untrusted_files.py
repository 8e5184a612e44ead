"""Untrusted files (#13 items 10, 11, 12, 15): damaged HDF5 internals, wrongly typed attributes,
tiny files declaring huge data, non-native dtypes, and inputs that are not regular files.

The hostile files are crafted with h5py, numpy and zipfile directly, so every case is the file an
attacker or a clumsy user would hand over, not one the code under test wrote for itself.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

import bfly_cli
from bfly_cli import transforms
from bfly_cli import h5format, input_files, matrix_io, sizes
from bfly_cli.errors import BflyError, FormatError

N = 8
READERS = [("show",), ("show", "--json"), ("verify",), ("export", "-f", "json", "--force", "-o", "{out}")]


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A valid DFT factor file at N = 8 (structure BP: a permutation, then a complex butterfly)."""
    path = tmp_path_factory.mktemp("base") / "dft-8.h5"
    bfly_cli.save(bfly_cli.factorize(transforms.build("dft", N), meta={"transform": "dft", "transform_options": {}, "seed": 0}), path)
    return path


def _variant(base: Path, tmp_path: Path, edit) -> Path:
    """A copy of ``base`` changed in place by ``edit(h5py.File)``."""
    path = tmp_path / "variant.h5"
    path.write_bytes(base.read_bytes())
    with h5py.File(path, "r+") as handle:
        edit(handle)
    return path


def _replace_data(handle, step: str, data=None, **create) -> None:
    del handle[f"steps/{step}/data"]
    handle[f"steps/{step}"].create_dataset("data", data=data, **create)


def _one_line_error(bfly, *args, input: bytes | None = None) -> str:
    result = bfly(*args, input=input)
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def _every_reader(bfly, path: Path, tmp_path: Path, x: Path) -> list[str]:
    """The one-line error of show, show --json, verify, export and apply on ``path``."""
    messages = [_one_line_error(bfly, *cmd[:1], path, *(a.format(out=tmp_path / "o.json") for a in cmd[1:])) for cmd in READERS]
    messages.append(_one_line_error(bfly, "apply", path, x, "-o", tmp_path / "y.npy"))
    return messages


@pytest.fixture
def x_file(tmp_path: Path) -> Path:
    np.save(tmp_path / "x.npy", np.random.default_rng(0).standard_normal((2, N)))
    return tmp_path / "x.npy"


# ---- item 10: damaged internals and wrongly typed attributes ---------------------------------


def _self_loop(handle) -> None:
    del handle["steps/1"]
    handle["steps/1"] = h5py.SoftLink("/steps/1")


def _data_loop(handle) -> None:
    del handle["steps/1/data"]
    handle["steps/1/data"] = h5py.SoftLink("/steps/1/data")


def _steps_elsewhere(handle) -> None:
    handle.move("steps", "hidden")
    handle["steps"] = h5py.SoftLink("/hidden")


@pytest.mark.parametrize("edit", [_self_loop, _data_loop, _steps_elsewhere], ids=["step-loop", "data-loop", "soft-steps"])
def test_link_loops_are_one_line_in_every_reader(bfly, base, tmp_path, x_file, edit):
    for message in _every_reader(bfly, _variant(base, tmp_path, edit), tmp_path, x_file):
        assert "link" in message.lower() or "not a dataset stored in the file" in message


@pytest.mark.parametrize("key,value,words", [
    ("transform_options", "[1, 2]", "transform_options must be a JSON object"),
    ("transform_options", "3", "transform_options must be a JSON object"),
    ("rel_error", "abc", "rel_error must be a number"),
    ("rel_error", np.zeros(3), "rel_error must be a number"),
    ("dense_real_params", 0, "dense_real_params = 0 is out of range"),
    ("dense_real_params", True, "dense_real_params must be an integer"),
    ("exact", "yes", "exact must be a boolean"),
    ("n", 16.5, "n must be an integer"),
    ("n", "16", "n must be an integer"),
    ("n", np.True_, "n must be an integer"),
    ("params", -4, "params = -4 is out of range"),
    ("format", np.array([1, 2]), "not a bfly factor file"),
])
def test_wrongly_typed_attributes_are_refused(bfly, base, tmp_path, x_file, key, value, words):
    path = _variant(base, tmp_path, lambda h: h.attrs.__setitem__(key, value))
    for message in _every_reader(bfly, path, tmp_path, x_file):
        assert words in message, message


def test_n_must_be_a_power_of_two_bfly_can_hold(bfly, base, tmp_path):
    for n in (12, 1 << 40):
        path = _variant(base, tmp_path, lambda h: h.attrs.__setitem__("n", n))
        assert f"n = {n} is not a power of two" in _one_line_error(bfly, "show", path)


def test_unknown_attributes_pass_through_and_show_as_json(bfly, base, tmp_path):
    def add(handle):
        handle.attrs["future_array"] = np.arange(3)
        handle.attrs["future_complex"] = np.complex128(1 + 2j)
        handle.attrs["future_names"] = np.array([b"a", b"bc"])

    path = _variant(base, tmp_path, add)
    np.testing.assert_array_equal(h5format.load(path).meta["future_array"], np.arange(3))
    shown = bfly("show", path, "--json")
    assert shown.exit_code == 0, shown.stderr
    import json

    meta = json.loads(shown.stdout)["metadata"]
    assert meta["future_array"] == [0, 1, 2] and meta["future_names"] == ["a", "bc"] and "1" in meta["future_complex"]
    assert bfly("show", path).exit_code == 0
    exported = bfly("export", path, "-f", "json", "-o", tmp_path / "o.json")
    assert exported.exit_code == 0, exported.stderr
    assert json.loads((tmp_path / "o.json").read_text())["metadata"]["future_array"] == [0, 1, 2]


def test_a_huge_attribute_is_refused_before_it_is_read(base, tmp_path):
    """2 MiB in one attribute (HDF5's dense attribute storage): metadata is never that large."""
    path = tmp_path / "blob.h5"
    with h5py.File(base) as src, h5py.File(path, "w", libver="latest") as dst:
        dst.attrs.update(dict(src.attrs))
        src.copy(src["steps"], dst)
        dst.attrs.create("future_blob", data=np.zeros(1 << 18))
    with pytest.raises(FormatError, match="too large for metadata"):
        h5format.load(path)


# ---- item 11: declared sizes checked before any data is read ----------------------------------


@pytest.fixture
def read_sizes(monkeypatch) -> list[int]:
    """Sizes of every h5py dataset read; a read of more than 2**20 elements fails the test."""
    sizes_read: list[int] = []
    original = h5py.Dataset.__getitem__

    def spy(self, args, *rest, **kw):
        sizes_read.append(self.size or 0)
        assert (self.size or 0) <= 1 << 20, f"read a dataset of {self.size} elements"
        return original(self, args, *rest, **kw)

    monkeypatch.setattr(h5py.Dataset, "__getitem__", spy)
    return sizes_read


def test_a_tiny_file_declaring_gigabytes_is_refused_unread(base, tmp_path, read_sizes):
    """The issue's 13 KB file whose (2**26, 2, 2, 2) twiddle dataset would cost 4.25 GB."""
    path = _variant(base, tmp_path, lambda h: _replace_data(h, "1", shape=(1 << 26, 2, 2, 2), dtype="c16",
                                                            chunks=(1024, 2, 2, 2), compression="gzip"))
    assert path.stat().st_size < 100_000
    with pytest.raises(FormatError, match=r"has shape \(67108864, 2, 2, 2\), expected \(3, 4, 2, 2\)"):
        h5format.load(path)


@pytest.mark.parametrize("make", ["npy", "npz", "h5"])
def test_matrix_files_get_the_memory_guard_before_reading(tmp_path, monkeypatch, read_sizes, make):
    """A matrix whose dense working set would not fit is refused from its declared shape."""
    monkeypatch.setattr(sizes, "available_bytes", lambda: 1 << 16)  # 64 KiB: learning 64 x 64 needs 8 copies of 32 KiB
    matrix = np.eye(64)
    path = tmp_path / f"m.{make}"
    if make == "npy":
        np.save(path, matrix)
    elif make == "npz":
        np.savez_compressed(path, m=matrix)
    else:
        with h5py.File(path, "w") as handle:
            handle.create_dataset("m", data=matrix, compression="gzip")
    with pytest.raises(BflyError, match="of memory for the dense matrix"):
        matrix_io.load_matrix(path)
    assert read_sizes == []


def test_a_npy_header_declaring_terabytes_is_refused_from_the_header(tmp_path):
    path = tmp_path / "huge.npy"
    with open(path, "wb") as handle:  # a header and no payload: 8 TiB declared in 128 bytes
        np.lib.format.write_array_header_1_0(handle, {"descr": "<f8", "fortran_order": False, "shape": (1 << 20, 1 << 20)})
    with pytest.raises(BflyError, match="GiB of memory"):
        matrix_io.load_matrix(path)


class _Endless(io.RawIOBase):
    """A stream that serves ``head`` and then zeros without end, counting what was read."""

    def __init__(self, head: bytes) -> None:
        self.head, self.served = head, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        chunk = self.head[self.served:self.served + len(view)]
        count = len(chunk) if chunk else min(len(view), 1 << 16)
        view[:count] = chunk if chunk else bytes(count)
        self.served += count
        return count


def _header(shape: tuple, descr: str = "<f8") -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def test_stdin_is_refused_from_the_header_without_reading_on(monkeypatch):
    """4 GB of garbage on stdin must not become 4 GB of memory: the header decides, then exactly
    the declared payload is read."""
    head = _header((1 << 40, N))
    stream = _Endless(head)
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BufferedReader(stream)))
    with pytest.raises(BflyError, match="GiB"):
        input_files.read_vectors("-", N)
    assert stream.served <= 64 * 1024  # the buffered reader's first fill, not the stream

    stream = _Endless(_header((3, N)))
    array = input_files.read_npy(stream, "stdin")
    assert array.shape == (3, N) and stream.served == len(stream.head) + 3 * N * 8


@pytest.mark.parametrize("payload,shape,words", [
    (b"", (3, N - 1), "length 8"),
    (np.zeros(N).tobytes(), (2, N), "truncated"),
    (b"", (1 << 40, N), "GiB"),
], ids=["last-axis", "truncated", "huge"])
def test_apply_checks_the_stdin_header_against_the_factors(bfly, base, tmp_path, payload, shape, words):
    message = _one_line_error(bfly, "apply", base, "-", "-o", tmp_path / "y.npy", input=_header(shape) + payload)
    assert words in message
    assert not (tmp_path / "y.npy").exists()


# ---- item 12: non-native dtypes are normalized on load (or refused when bfly cannot compute in them)


@pytest.mark.parametrize("perm_dtype", [">i8", "u1", "i1", ">u2"])
def test_permutations_of_any_integer_type_load_as_native_int64(bfly, base, tmp_path, x_file, perm_dtype):
    with h5py.File(base) as handle:
        perm = handle["steps/0/data"][()]
    path = _variant(base, tmp_path, lambda h: _replace_data(h, "0", perm.astype(perm_dtype)))
    loaded = h5format.load(path).steps[0].data
    assert loaded.dtype == np.int64 and loaded.dtype.isnative
    np.testing.assert_array_equal(loaded, perm)
    result = bfly("apply", path, x_file, "-o", tmp_path / "y.npy")
    assert result.exit_code == 0, result.stderr
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), np.fft.fft(np.load(x_file)) / np.sqrt(N), atol=1e-12)


def test_big_endian_twiddles_load_native(base, tmp_path):
    with h5py.File(base) as handle:
        twiddles = handle["steps/1/data"][()]
    big = np.stack([twiddles.real, twiddles.imag], axis=-1).astype(">f8")
    compound = np.dtype([("r", ">f8"), ("i", ">f8")])  # h5py's complex layout, big-endian parts
    path = _variant(base, tmp_path, lambda h: _replace_data(h, "1", big.view(compound)[..., 0]))
    loaded = h5format.load(path).steps[1].data
    assert loaded.dtype.isnative and loaded.dtype.kind == "c"
    np.testing.assert_array_equal(loaded, twiddles)


def test_half_precision_twiddles_load_as_float32(tmp_path):
    """Built by hand: a real Hadamard butterfly (every block [[1, 1], [1, -1]]) stored as float16."""
    path = tmp_path / "h.h5"
    blocks = np.tile(np.array([[1, 1], [1, -1]], np.float16), (3, N // 2, 1, 1))
    with h5py.File(path, "w") as handle:
        handle.attrs.update({"format": "bfly.factors", "format_version": 1, "transform": "hadamard", "n": N,
                             "dtype": "float16", "structure": "B", "solver": "hand", "rmse": 0.0, "rel_error": 0.0,
                             "max_abs_error": 0.0, "seconds": 0.0, "seed": 0, "bfly_version": "0", "created": "-",
                             "command": "-"})
        handle.create_group("steps/0").attrs["kind"] = "butterfly"
        handle["steps/0"].create_dataset("data", data=blocks)
    factors = h5format.load(path)
    assert factors.steps[0].data.dtype == np.float32
    hadamard = np.array([[1]])
    for _ in range(3):
        hadamard = np.kron(np.array([[1, 1], [1, -1]]), hadamard)
    np.testing.assert_array_equal(factors.to_dense(), hadamard)


def test_extended_precision_twiddles_are_refused(bfly, base, tmp_path, x_file):
    with h5py.File(base) as handle:
        twiddles = handle["steps/1/data"][()]
    path = _variant(base, tmp_path, lambda h: _replace_data(h, "1", twiddles.real.astype(np.longdouble)))
    if np.dtype(np.longdouble).itemsize <= 8:
        pytest.skip("long double is float64 on this platform")
    for message in _every_reader(bfly, path, tmp_path, x_file):
        assert "extended precision" in message


def test_big_endian_npy_input_to_apply(bfly, base, tmp_path):
    x = np.random.default_rng(1).standard_normal((3, N))
    np.save(tmp_path / "x.npy", x.astype(">f8"))
    result = bfly("apply", base, tmp_path / "x.npy", "-o", tmp_path / "y.npy")
    assert result.exit_code == 0, result.stderr
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), np.fft.fft(x) / np.sqrt(N), atol=1e-12)


def test_big_endian_matrix_file(tmp_path):
    matrix = np.random.default_rng(2).standard_normal((4, 4))
    np.save(tmp_path / "m.npy", matrix.astype(">f8"))
    loaded = matrix_io.load_matrix(tmp_path / "m.npy")
    assert loaded.dtype == np.float64 and loaded.dtype.isnative
    np.testing.assert_array_equal(loaded, matrix)


# ---- item 15: what a bad input is called ------------------------------------------------------


def test_a_directory_is_called_a_directory(bfly, base, tmp_path):
    folder = tmp_path / "folder.h5"
    folder.mkdir()
    assert "is a directory" in _one_line_error(bfly, "show", folder)
    assert "is a directory" in _one_line_error(bfly, "apply", base, folder, "-o", tmp_path / "y.npy")
    assert "is a directory" in _one_line_error(bfly, "learn", folder, "-o", tmp_path / "l.h5")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_is_refused_without_blocking(bfly, base, tmp_path):
    fifo = tmp_path / "pipe.npy"
    os.mkfifo(fifo)
    assert "not a regular file" in _one_line_error(bfly, "show", fifo)
    assert "not a regular file" in _one_line_error(bfly, "apply", base, fifo, "-o", tmp_path / "y.npy")
    assert "not a regular file" in _one_line_error(bfly, "learn", fifo, "-o", tmp_path / "l.h5")


def test_a_text_file_is_never_advised_to_be_unpickled(bfly, base, tmp_path):
    text = tmp_path / "notes.npy"
    text.write_text("1 2\n3 4\n")
    for args in (("learn", text, "-o", tmp_path / "l.h5"), ("analyze", text), ("apply", base, text, "-o", tmp_path / "y.npy")):
        message = _one_line_error(bfly, *args)
        assert "pickle" not in message and "not a readable .npy array" in message


@pytest.mark.parametrize("member,content,words", [
    ("readme.txt", b"hello", "not a .npy array"),
    ("m.npy", b"hello", "not a readable .npy array"),
    ("m.npy", None, "never unpickles"),
])
def test_npz_members_that_are_not_numeric_npy(bfly, tmp_path, member, content, words):
    if content is None:
        buffer = io.BytesIO()
        np.save(buffer, np.array([{}, {}], dtype=object), allow_pickle=True)
        content = buffer.getvalue()
    with zipfile.ZipFile(tmp_path / "m.npz", "w") as archive:
        archive.writestr(member, content)
    for command in ("learn", "analyze"):
        extra = ("-o", tmp_path / "l.h5") if command == "learn" else ()
        assert words in _one_line_error(bfly, command, tmp_path / "m.npz", *extra)


def test_a_convolution_filter_file_is_read_like_any_npy(bfly, tmp_path):
    """``--filter FILE.npy`` is an input file too: a text file gets no unpickling advice."""
    (tmp_path / "f.npy").write_text("0.5 0.25\n")
    message = _one_line_error(bfly, "learn", "convolution", "--n", N, "--filter", tmp_path / "f.npy", "-o", tmp_path / "c.h5")
    assert "pickle" not in message and "not a readable .npy array" in message
    (tmp_path / "d.npy").mkdir()
    assert "is a directory" in _one_line_error(bfly, "learn", "convolution", "--n", N, "--filter", tmp_path / "d.npy", "-o", tmp_path / "c.h5")


def test_a_garbled_npy_header_is_one_line(bfly, base, tmp_path):
    """Zeroed bytes inside the header text made numpy's tokenizer raise TokenError (found by the fuzzer)."""
    data = bytearray(_header((N, N)) + np.zeros(N * N).tobytes())
    data[45:70] = bytes(25)
    (tmp_path / "g.npy").write_bytes(bytes(data))
    for args in (("apply", base, tmp_path / "g.npy", "-o", tmp_path / "y.npy"), ("learn", tmp_path / "g.npy", "-o", tmp_path / "l.h5")):
        assert "not a readable .npy array" in _one_line_error(bfly, *args)
    assert "not a readable .npy array" in _one_line_error(bfly, "apply", base, "-", "-o", tmp_path / "y.npy", input=bytes(data))


@pytest.mark.parametrize("options,words", [
    ({"seed": "x"}, "--seed must be an integer"),
    ({"seed": 1e300}, "--seed must be an integer"),
    ({"filter": 3}, "--filter must be a file path"),
    ({"filter": "/dev/zero"}, "not a regular file"),
    ({"seed": True}, "--seed must be an integer"),
])
def test_recorded_transform_options_are_checked_before_use(bfly, tmp_path, options, words):
    """A file's transform_options are untrusted input to the transform (verify rebuilds from them)."""
    path = tmp_path / "conv.h5"
    bfly_cli.save(bfly_cli.factorize(transforms.build("convolution", N), meta={"transform": "convolution", "seed": 0}), path)
    import json

    with h5py.File(path, "r+") as handle:
        handle.attrs["transform_options"] = json.dumps(options)
    assert words in _one_line_error(bfly, "verify", path)


def test_bench_refuses_a_recorded_norm_scipy_does_not_know():
    """bench's fast baseline passed the recorded --norm straight to scipy (ValueError traceback)."""
    from bfly_cli.bench_run import fast_baseline

    method = fast_baseline({"transform": "dft", "transform_options": {"norm": 3}}, N, real_input=False, threads=1)
    assert method.prepare is None and "transform_options are invalid" in method.reason
    assert fast_baseline({"transform": "dft", "transform_options": {"norm": "ortho"}}, N, False, 1).prepare is not None


@pytest.mark.parametrize("value", [b"\xff\xfe", np.array(b"d\xfft")])
def test_text_attributes_that_are_not_utf8_can_be_shown(bfly, base, tmp_path, value):
    """Bytes that are not UTF-8 reached the console as surrogates: UnicodeEncodeError (found by the fuzzer)."""
    path = _variant(base, tmp_path, lambda h: h.attrs.__setitem__("transform", value))
    result = bfly("show", path)
    assert result.exit_code == 0 and "\ufffd" in result.stdout
    assert bfly("show", path, "--json").exit_code == 0
