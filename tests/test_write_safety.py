"""Writing outputs safely (#13 items 2, 3, 8, 9, 14, 15): special files and symlinks, outputs that
are inputs, disk and pipe errors, signals and stale temps, file modes, one-line usage errors.

Factor files are built by hand (a permutation and a diagonal, whose product is known exactly) and
inputs with numpy; signals, pipes and closed descriptors need a real process, so those tests start
one (the ``bfly`` console script, or a few lines that patch a write to be slow).
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest

from bfly_cli import cli, h5format, safe_write
from bfly_cli.errors import BflyError
from bfly_cli.factors import Factors, Step

N = 8
PERM = np.arange(N)[::-1].copy()
DIAG = np.arange(1, N + 1).astype(np.complex128)
BFLY = str(Path(sys.executable).with_name("bfly"))
SLOW = pytest.mark.slow  # each starts a process (about 1 s on two cores) or imports the solvers
META = dict(transform="permutation", solver="hand", rmse=0.0, rel_error=0.0, max_abs_error=0.0, seconds=0.0,
            seed=0, bfly_version="0", created="2024-01-01T00:00:00Z", command="tests")


def factors() -> Factors:
    return Factors(N, [Step("permutation", PERM), Step("diagonal", DIAG)], dict(META))


def expected(x: np.ndarray) -> np.ndarray:
    """D P x for the hand-made factors: entry i is d_i * x[perm[i]]."""
    return DIAG * x[..., PERM]


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path, np.ndarray]:
    """A factor file and an input array in ``tmp_path``."""
    factor_file = tmp_path / "f.h5"
    h5format.save(factors(), factor_file)
    x = np.random.default_rng(0).standard_normal((3, N))
    np.save(tmp_path / "x.npy", x)
    return factor_file, tmp_path / "x.npy", x


def temps(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def one_line(text: str) -> bool:
    return text.count("\n") == 1 and text.startswith("error: ") and "Traceback" not in text


# ----------------------------------------------------------------------------- item 2: special files, symlinks


def test_dev_null_is_written_through_without_force(bfly, files) -> None:
    factor_file, x_path, _ = files
    result = bfly("apply", factor_file, x_path, "-o", os.devnull)
    assert result.exit_code == 0, result.stderr
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)


def test_fifo_is_written_through_not_replaced(bfly, files, tmp_path) -> None:
    factor_file, x_path, x = files
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    result = bfly("apply", factor_file, x_path, "-o", fifo, "--force")
    reader.join(timeout=10)
    assert result.exit_code == 0, result.stderr
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    (tmp_path / "got.npy").write_bytes(received[0])
    np.testing.assert_allclose(np.load(tmp_path / "got.npy"), expected(x), atol=1e-12)


def test_descriptor_alias_is_written_in_place(bfly, files, tmp_path) -> None:
    """``-o /dev/stdout`` with stdout redirected to a file: that open file gets the bytes (same
    inode), nothing is renamed over the alias."""
    factor_file, x_path, x = files
    out = tmp_path / "redirected.npy"
    with open(out, "wb") as handle:
        inode = os.fstat(handle.fileno()).st_ino
        result = bfly("apply", factor_file, x_path, "-o", f"/proc/self/fd/{handle.fileno()}")
    assert result.exit_code == 0, result.stderr
    assert os.stat(out).st_ino == inode
    np.testing.assert_allclose(np.load(out), expected(x), atol=1e-12)


def test_symlink_output_replaces_its_target_and_keeps_the_link(bfly, files, tmp_path) -> None:
    factor_file, x_path, x = files
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "y.npy"
    target.write_bytes(b"old")
    link = tmp_path / "link.npy"
    link.symlink_to(target)
    result = bfly("apply", factor_file, x_path, "-o", link, "--force")
    assert result.exit_code == 0, result.stderr
    assert link.is_symlink() and os.readlink(link) == str(target)
    np.testing.assert_allclose(np.load(target), expected(x), atol=1e-12)
    assert temps(tmp_path) == [] and temps(target.parent) == []


def test_socket_output_is_refused(bfly, files, tmp_path, monkeypatch) -> None:
    factor_file, x_path, _ = files
    monkeypatch.chdir(tmp_path)  # a short relative name: socket paths are limited to ~100 bytes
    server = socket.socket(socket.AF_UNIX)
    server.bind("sock")
    try:
        result = bfly("apply", factor_file, x_path, "-o", "sock", "--force")
        assert result.exit_code == 2 and one_line(result.stderr) and "socket" in result.stderr
        assert stat.S_ISSOCK(os.lstat("sock").st_mode)
    finally:
        server.close()


# ----------------------------------------------------------------------------- item 3: outputs that are inputs


def test_apply_refuses_to_write_over_its_factor_file(bfly, files) -> None:
    factor_file, x_path, _ = files
    before = factor_file.read_bytes()
    result = bfly("apply", factor_file, x_path, "-o", factor_file, "--force")
    assert result.exit_code == 2 and one_line(result.stderr) and "input" in result.stderr
    assert factor_file.read_bytes() == before


def test_apply_refuses_a_hard_link_or_symlink_to_its_input(bfly, files, tmp_path) -> None:
    factor_file, x_path, _ = files
    before = x_path.read_bytes()
    os.link(x_path, tmp_path / "hard.npy")
    (tmp_path / "soft.npy").symlink_to(x_path)
    for out in ("hard.npy", "soft.npy"):
        result = bfly("apply", factor_file, x_path, "-o", tmp_path / out, "--force")
        assert result.exit_code == 2 and one_line(result.stderr), out
    assert x_path.read_bytes() == before


@SLOW
def test_learn_refuses_to_write_over_its_matrix(bfly, tmp_path) -> None:
    source = tmp_path / "m.npy"
    np.save(source, np.fft.fft(np.eye(N), norm="ortho"))
    before = source.read_bytes()
    result = bfly("learn", source, "-o", source, "--force", "-q")
    assert result.exit_code == 2 and one_line(result.stderr) and "input" in result.stderr
    assert source.read_bytes() == before


def test_check_writable_names_the_input(tmp_path) -> None:
    source = tmp_path / "a.npy"
    source.write_bytes(b"data")
    (tmp_path / "b.npy").symlink_to(source)
    with pytest.raises(BflyError, match="is the input"):
        safe_write.check_writable(tmp_path / "b.npy", True, inputs=(source,))
    assert safe_write.check_writable(tmp_path / "new.npy", True, inputs=(source, None, "-")) == tmp_path / "new.npy"


# ----------------------------------------------------------------------------- item 8: disk and pipe errors


def test_disk_full_during_write_is_one_error_and_no_temp(tmp_path) -> None:
    def writer(tmp: str) -> None:
        Path(tmp).write_bytes(b"half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(BflyError, match="No space left on device") as info:
        safe_write.atomic_write(tmp_path / "out.npy", writer)
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_dev_full_output_is_exit_2(bfly, files) -> None:
    factor_file, x_path, _ = files
    result = bfly("apply", factor_file, x_path, "-o", "/dev/full")
    assert result.exit_code == 2 and one_line(result.stderr) and "No space left" in result.stderr
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


FILE_SIZE_LIMITED_SAVE = """
import resource, signal, sys
import numpy as np
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (2048, resource.RLIM_INFINITY))
from bfly_cli import h5format
from bfly_cli.errors import BflyError
from bfly_cli.factors import Factors, Step
n = 1024
meta = dict(transform="p", solver="hand", rmse=0.0, rel_error=0.0, max_abs_error=0.0, seconds=0.0, seed=0,
            bfly_version="0", created="2024-01-01T00:00:00Z", command="tests")
try:
    h5format.save(Factors(n, [Step("permutation", np.arange(n)), Step("diagonal", np.ones(n, complex))], meta), sys.argv[1])
except BflyError as exc:
    print(exc, file=sys.stderr)
    sys.exit(2)
"""


@SLOW
def test_hdf5_write_past_the_file_size_limit_is_an_error_not_a_crash(tmp_path) -> None:
    """A file-size limit makes every write past 2 KiB fail, as a full disk does; HDF5's own I/O
    used to crash there (SIGSEGV) and leave the temp."""
    script = tmp_path / "save.py"
    script.write_text(FILE_SIZE_LIMITED_SAVE)
    out = tmp_path / "out" / "f.h5"
    out.parent.mkdir()
    run = subprocess.run([sys.executable, str(script), str(out)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2, run.stderr
    assert "File too large" in run.stderr and "Traceback" not in run.stderr
    assert list(out.parent.iterdir()) == []


def _closed_reader(args: list[str]) -> tuple[int, str]:
    """Run with stdout a pipe whose reader is already gone (what ``| head`` leaves behind)."""
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()
    stderr = process.stderr.read().decode()
    return process.wait(timeout=60), stderr


@SLOW
def test_list_into_a_closed_pipe_exits_141_quietly() -> None:
    assert _closed_reader([BFLY, "list", "--json"]) == (141, "")


@SLOW
def test_apply_into_a_closed_pipe_exits_141_quietly(files) -> None:
    factor_file, x_path, _ = files
    np.save(x_path, np.zeros((4096, N)))  # more than a pipe buffer
    assert _closed_reader([BFLY, "apply", str(factor_file), str(x_path)]) == (141, "")


@SLOW
def test_list_piped_into_head_has_no_traceback() -> None:
    run = subprocess.run(["bash", "-c", f"'{BFLY}' list --json | head -c 1 >/dev/null; exit ${{PIPESTATUS[0]}}"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode in (0, 141) and run.stderr == ""


@SLOW
@pytest.mark.parametrize("command", ["list >&-", "--version >/dev/full", "--help >&-"])
def test_lost_stdout_is_exit_2(command) -> None:
    run = subprocess.run(["bash", "-c", f"'{BFLY}' {command}"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and one_line(run.stderr), run.stderr


@SLOW
def test_closed_stdout_is_fine_when_nothing_goes_there(files, tmp_path) -> None:
    factor_file, x_path, x = files
    out = tmp_path / "y.npy"
    run = subprocess.run(["bash", "-c", f"'{BFLY}' apply '{factor_file}' '{x_path}' -o '{out}' >&-"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    np.testing.assert_allclose(np.load(out), expected(x), atol=1e-12)


# ----------------------------------------------------------------------------- item 9: signals, stale temps

SLOW_APPLY = """
import sys, time
import numpy as np
from bfly_cli import cli
real = np.lib.format.write_array
def slow(*args, **kwargs):
    real(*args, **kwargs)
    print("writing", file=sys.stderr, flush=True)
    time.sleep(30)
np.lib.format.write_array = slow
sys.argv = ["bfly", "apply", *sys.argv[1:]]
cli.main()
"""


@SLOW
@pytest.mark.parametrize("signum, code, words", [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGHUP, 129, "SIGHUP"),
                                                 (signal.SIGINT, 130, "interrupted")])
def test_signal_during_a_write_removes_the_temp(files, tmp_path, signum, code, words) -> None:
    factor_file, x_path, _ = files
    script = tmp_path / "slow.py"
    script.write_text(SLOW_APPLY)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    # SIGHUP and SIGINT at their defaults, whatever this run inherited (under nohup SIGHUP is
    # ignored, and a shell without job control starts background jobs with SIGINT ignored; bfly
    # rightly leaves an ignored signal ignored)
    process = subprocess.Popen([sys.executable, str(script), str(factor_file), str(x_path), "-o", str(out_dir / "y.npy")],
                               stderr=subprocess.PIPE, text=True, preexec_fn=_default_signals)
    assert process.stderr.readline() == "writing\n"
    assert len(temps(out_dir)) == 1  # the write is under way
    process.send_signal(signum)
    assert process.wait(timeout=30) == code
    rest = process.stderr.read()
    assert rest.count("\n") == 1 and words in rest and "Traceback" not in rest
    assert list(out_dir.iterdir()) == []


def _default_signals() -> None:
    """In the child, before exec: SIGHUP and SIGINT at their defaults, as in a terminal (Python
    then turns SIGINT into KeyboardInterrupt)."""
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_interrupt_just_after_the_temp_is_created_leaves_nothing(tmp_path, monkeypatch) -> None:
    """Ctrl-C landing while the temp file is being created (before its name is known to the code
    that removes it) must not leave it behind."""
    real = tempfile.mkstemp

    def mkstemp_then_interrupted(*args, **kwargs):
        made = real(*args, **kwargs)
        signal.raise_signal(signal.SIGINT)
        return made

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp_then_interrupted)
    # Ctrl-C raises KeyboardInterrupt here even when this run inherited SIGINT ignored (a
    # background job of a shell without job control)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            safe_write.atomic_write(tmp_path / "out.npy", lambda tmp: Path(tmp).write_bytes(b"data"))
    finally:
        signal.signal(signal.SIGINT, previous)
    assert list(tmp_path.iterdir()) == []


def test_stale_temps_of_dead_writers_are_swept_live_ones_kept(tmp_path) -> None:
    finished = subprocess.Popen(["true"])
    finished.wait()
    dead, alive = finished.pid, os.getpid()
    names = [f".f.h5.{dead}.abcdefgh.tmp", f".f.h5.{alive}.abcdefgh.tmp", f".other.h5.{dead}.abcdefgh.tmp",
             ".f.h5.abcdefgh.tmp"]  # a dead writer's, a live one's, another file's, one without a PID
    for name in names:
        (tmp_path / name).write_bytes(b"partial")
    h5format.save(factors(), tmp_path / "f.h5")
    assert temps(tmp_path) == sorted(names[1:])
    assert (tmp_path / "f.h5").is_file()


# ----------------------------------------------------------------------------- item 14: file modes


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_new_files_get_the_mode_open_would_give(tmp_path, umask, mode) -> None:
    previous = os.umask(umask)
    try:
        h5format.save(factors(), tmp_path / "f.h5")
        safe_write.atomic_write(tmp_path / "y.npy", lambda tmp: Path(tmp).write_bytes(b"data"))
    finally:
        os.umask(previous)
    assert stat.S_IMODE(os.stat(tmp_path / "f.h5").st_mode) == mode
    assert stat.S_IMODE(os.stat(tmp_path / "y.npy").st_mode) == mode


def test_force_keeps_the_replaced_files_mode(bfly, files, tmp_path) -> None:
    factor_file, x_path, x = files
    out = tmp_path / "y.npy"
    out.write_bytes(b"old")
    os.chmod(out, 0o604)
    previous = os.umask(0o077)
    try:
        result = bfly("apply", factor_file, x_path, "-o", out, "--force")
    finally:
        os.umask(previous)
    assert result.exit_code == 0, result.stderr
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o604
    np.testing.assert_allclose(np.load(out), expected(x), atol=1e-12)


# ----------------------------------------------------------------------------- item 15: usage errors


def run_main(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """``cli.main`` in-process with these arguments (signal handlers left alone)."""
    monkeypatch.setattr(sys, "argv", ["bfly", *args])
    monkeypatch.setattr(cli, "_install_signal_handlers", lambda: None)
    with pytest.raises(SystemExit) as info:
        cli.main()
    out, err = capsys.readouterr()
    return info.value.code, out, err


@pytest.mark.parametrize("args, words", [
    (("nosuchcmd",), "no such command 'nosuchcmd'"),
    (("learn",), "missing argument"),
    (("learn", "dct", "--n", "abc"), "'--n'"),
    (("learn", "dct", "--bogus"), "no such option: --bogus"),
    (("apply",), "missing argument"),
])
def test_usage_errors_are_one_line_exit_2(monkeypatch, capsys, args, words) -> None:
    code, out, err = run_main(monkeypatch, capsys, *args)
    assert code == 2 and out == "" and one_line(err) and words in err, err
    assert "--help" in err


@pytest.mark.parametrize("args", [("--help",), ("learn", "--help"), ("--version",)])
def test_help_and_version_still_exit_0(monkeypatch, capsys, args) -> None:
    code, out, err = run_main(monkeypatch, capsys, *args)
    assert code == 0 and err == "" and ("Usage" in out or out.startswith("bfly "))


def test_no_arguments_show_the_help(monkeypatch, capsys) -> None:
    code, out, err = run_main(monkeypatch, capsys)
    assert code == 2 and "Usage" in err and "learn" in err


def test_command_errors_keep_their_exit_codes(monkeypatch, capsys, tmp_path) -> None:
    code, _, err = run_main(monkeypatch, capsys, "show", str(tmp_path / "missing.h5"))
    assert code == 2 and one_line(err)


@pytest.mark.slow  # imports torch
def test_pt_export_on_a_full_disk_is_an_os_error() -> None:
    """torch's own writer turns ENOSPC into a RuntimeError (a traceback); the export must raise the
    OSError that ``atomic_write`` turns into one line."""
    from bfly_cli import export

    with pytest.raises(OSError) as info:
        export.write_pt(factors(), "/dev/full")
    assert info.value.errno == errno.ENOSPC
