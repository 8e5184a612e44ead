"""The deadline on reading a factor file (bfly_cli/read_guard.py): a file on which the HDF5 library
loops forever is reported as damaged (one line, exit 2) instead of hanging the command.

``tests/data/hdf5-heap-loop.h5`` is mutant 147 of ``benchmarks/fuzz_files.py --seed 0`` (a DFT
factor file with a zeroed block in the heap of a string attribute): reading its attributes never
returns. Before the guard, ``bfly show`` on it hung until killed.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from bfly_cli import h5format, read_guard
from bfly_cli.errors import FormatError

LOOP = Path(__file__).parent / "data" / "hdf5-heap-loop.h5"


def test_a_read_that_never_ends_is_reported_as_damage(tmp_path, monkeypatch) -> None:
    path = tmp_path / "f.h5"
    path.write_bytes(b"anything")
    # The forked child inherits the patch. Had the guard waited for it, the child would end
    # normally after 60 s and nothing would be raised: the error is the deadline path.
    monkeypatch.setattr(h5format, "load", lambda p: time.sleep(60))
    with pytest.raises(FormatError, match="did not finish within"):
        read_guard.check_readable(path, seconds=0.5)


def test_ordinary_outcomes_pass_through(tmp_path) -> None:
    bad = tmp_path / "text.h5"
    bad.write_text("not hdf5")
    read_guard.check_readable(bad)  # refused by load itself: the caller's read reports it
    read_guard.check_readable(tmp_path / "missing.h5")


@pytest.mark.slow
@pytest.mark.parametrize("command", ["show", "verify", "export", "bench"])
def test_commands_on_a_looping_file_exit_2(tmp_path, command: str) -> None:
    args = {"export": ["--format", "npz", "-o", str(tmp_path / "x.npz")], "bench": ["--batch", "1", "--repeat", "1"]}
    done = subprocess.run([sys.executable, "-m", "bfly_cli", command, str(LOOP), *args.get(command, [])],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error: ") and "did not finish" in done.stderr
    assert done.stderr.count("\n") == 1
