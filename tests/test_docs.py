"""Every shell command shown in README.md and docs/*.md is run, so the docs cannot rot.

How blocks are found and run
----------------------------
* Fenced blocks tagged ``sh``, ``bash``, ``shell`` or ``console`` are collected. In ``console``
  blocks the commands are the lines starting with ``$ `` (the other lines are sample output and
  are not compared, since timings and dates change); in the others every non-empty line that is
  not a ``#`` comment is a command. A line ending in ``\\`` continues on the next line.
* The commands of one document run in order, in one fresh temporary directory (so a ``bfly learn``
  early in a page makes the file a later ``bfly show`` reads), through ``bash -o pipefail``, with
  ``bfly`` running this checkout (``python -m bfly_cli.cli``) and ``python``/``python3`` this
  interpreter. Each command must exit 0 unless its block says otherwise.
* ``python`` blocks marked ``<!-- run -->`` run too, each as one script, in the same directory
  and order (library examples that stand alone; fragments that need files from elsewhere stay
  unmarked). Untagged fences (```` ``` ````) are never run: use them for output or for commands
  too slow to run here.

Markers (an HTML comment on the line right above the opening fence; invisible when rendered)
-------------------------------------------------------------------------------------------
``<!-- main-command -->``  README's set-up block (creates a venv, installs torch): not run here.
``<!-- test-command -->``  README's block that runs this test suite: not run here.
``<!-- no-test -->``       not run (long-running, needs network or hardware, or shows a mistake).
``<!-- exit: N -->``       run, and every command of the block must exit with code N (e.g. to show
                           an error message: ``<!-- exit: 2 -->``).
``<!-- run -->``           on a ``python`` block: run it as a script (must exit 0).

Keep commands in the docs small (N <= 256, tiny sweeps): this whole file should take seconds.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHELL_TAGS = {"sh", "bash", "shell", "console"}
SKIP_MARKERS = {"main-command", "test-command", "no-test"}
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([\w-]*)")
MARKER = re.compile(r"^\s*<!--\s*(.*?)\s*-->\s*$")
COMMAND_TIMEOUT = 120


@dataclass(frozen=True)
class DocCommand:
    """One command to run, where it came from, and the exit code its block expects."""

    source: str
    line: int
    command: str
    exit_code: int = 0
    python: bool = False  # a whole ```python block, run as a script


def doc_files() -> list[Path]:
    """README.md and every Markdown file under docs/."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def extract(text: str, source: str) -> list[DocCommand]:
    """The commands of every shell block of ``text`` that no marker skips, in document order."""
    commands: list[DocCommand] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        fence, tag = opening.group(2), opening.group(3).lower()
        end = _closing(lines, index + 1, fence)
        marker = _marker(lines, index)
        body = lines[index + 1 : end]
        if tag in SHELL_TAGS and marker not in SKIP_MARKERS:
            for line_no, command in _commands(body, console=tag == "console", first_line=index + 2):
                commands.append(DocCommand(source, line_no, command, _expected_exit(marker)))
        elif tag == "python" and marker == "run":
            commands.append(DocCommand(source, index + 2, "\n".join(body) + "\n", _expected_exit(marker), python=True))
        index = end + 1
    return commands


def _closing(lines: list[str], start: int, fence: str) -> int:
    for index in range(start, len(lines)):
        if lines[index].strip().startswith(fence[0] * len(fence)) and lines[index].strip().strip(fence[0]) == "":
            return index
    return len(lines)


def _marker(lines: list[str], fence_index: int) -> str | None:
    """The HTML comment directly above the fence (blank lines allowed between), if any."""
    index = fence_index - 1
    while index >= 0 and not lines[index].strip():
        index -= 1
    match = MARKER.match(lines[index]) if index >= 0 else None
    return match.group(1).strip() if match else None


def _expected_exit(marker: str | None) -> int:
    match = re.fullmatch(r"exit:\s*(\d+)", marker or "")
    return int(match.group(1)) if match else 0


def _commands(body: list[str], console: bool, first_line: int) -> list[tuple[int, str]]:
    """(line number, command) pairs; continuation lines joined, console output lines dropped."""
    found: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for offset, raw in enumerate(body):
        line = raw.rstrip()
        if not pending:
            if console:
                if not line.lstrip().startswith("$ "):
                    continue
                line = line.lstrip()[2:]
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            start = first_line + offset
        if line.endswith("\\"):
            pending.append(line[:-1])
            continue
        found.append((start, " ".join(part.strip() for part in [*pending, line])))
        pending = []
    if pending:
        found.append((start, " ".join(part.strip() for part in pending)))
    return found


# ----------------------------------------------------------------------------- running


@pytest.fixture(scope="module")
def tool_bin(tmp_path_factory) -> Path:
    """A bin directory whose ``bfly``, ``python`` and ``python3`` are this checkout and interpreter."""
    bin_dir = tmp_path_factory.mktemp("bin")
    (bin_dir / "bfly").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m bfly_cli.cli "$@"\n')
    (bin_dir / "bfly").chmod(0o755)
    for name in ("python", "python3"):  # a wrapper, not a symlink: a venv's python finds its
        (bin_dir / name).write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')  # pyvenv.cfg by path
        (bin_dir / name).chmod(0o755)
    return bin_dir


def run_command(command: DocCommand, cwd: Path, tool_bin: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{tool_bin}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
           "COLUMNS": "100"}
    if command.python:
        return subprocess.run([sys.executable, "-"], input=command.command, cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    return subprocess.run(["bash", "-o", "pipefail", "-c", command.command], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=COMMAND_TIMEOUT)


SLOW_DOCS = {"docs/cli.md", "docs/index.md"}  # each learns, sweeps and benches for ~20 s on two cores


def _doc_params() -> list:
    """One test per document; the long tours are marked ``slow`` (left out by ``-m "not slow"``)."""
    out = []
    for doc in doc_files():
        name = str(doc.relative_to(ROOT))
        out.append(pytest.param(doc, id=name, marks=[pytest.mark.slow] if name in SLOW_DOCS else []))
    return out


@pytest.mark.parametrize("doc", _doc_params())
def test_doc_commands_run(doc: Path, tmp_path: Path, tool_bin: Path) -> None:
    commands = extract(doc.read_text(), str(doc.relative_to(ROOT)))
    if not commands:
        pytest.skip(f"{doc.name} shows no shell commands")
    for command in commands:
        result = run_command(command, tmp_path, tool_bin)
        shown = "the python block" if command.python else f"`{command.command}`"
        assert result.returncode == command.exit_code, (
            f"{command.source}:{command.line}: {shown} exited {result.returncode}, "
            f"expected {command.exit_code}\n--- stdout\n{result.stdout[-2000:]}\n--- stderr\n{result.stderr[-2000:]}"
        )


def test_the_tour_is_covered() -> None:
    """docs/index.md's tour really is extracted (a parser bug must not silently run nothing)."""
    commands = extract((ROOT / "docs" / "index.md").read_text(), "docs/index.md")
    verbs = {c.command.split()[1] for c in commands if c.command.startswith("bfly ")}
    assert {"learn", "show"} <= verbs


def test_slow_docs_exist() -> None:
    """A renamed page must not silently move its commands into the quick loop (or out of it)."""
    assert SLOW_DOCS <= {str(doc.relative_to(ROOT)) for doc in doc_files()}


def test_readme_setup_blocks_are_skipped() -> None:
    commands = extract((ROOT / "README.md").read_text(), "README.md")
    assert not any("pip install" in c.command for c in commands)


# ----------------------------------------------------------------------------- the extractor itself


SAMPLE = """\
Intro.

```console
$ bfly learn dft --n 8
 output line that is not run
$ bfly show \\
    dft-8.h5
```

<!-- no-test -->
```sh
bfly sweep -o out --sizes 8..8192
```

<!-- exit: 2 -->

```sh
# a comment
bfly learn dft --n 12
```

<!-- run -->
```python
import bfly_cli
```

```python
raise SystemExit(3)
```

```
$ bfly list
```
"""


def test_extract_follows_the_rules() -> None:
    commands = extract(SAMPLE, "sample.md")
    assert [(c.line, c.command, c.exit_code) for c in commands] == [
        (4, "bfly learn dft --n 8", 0),
        (6, "bfly show dft-8.h5", 0),
        (19, "bfly learn dft --n 12", 2),
        (24, "import bfly_cli\n", 0),
    ]
    assert commands[-1].python
