"""Choice-typed options and clean metavars (#14 item 6): fixed value sets are listed in ``--help``
and refused while parsing; no help text shows a Python type (``<int>``, ``<str>``, ``<list[Path]>``);
``apply --json`` describes what it wrote.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import scipy.linalg

from bfly_cli import export, learning, transforms, torch_butterfly
from bfly_cli.commands import _choices
from bfly_cli.solvers.registry import SOLVER_NAMES

COMMANDS = ("learn", "analyze", "show", "bench", "export", "verify", "sweep", "apply", "list")


def test_choice_lists_mirror_the_library() -> None:
    assert _choices.LEARN_DTYPES == learning.DTYPES
    assert _choices.EXPORT_FORMATS == tuple(export.FORMATS)
    assert _choices.NORMS == transforms.NORMS
    assert _choices.MODELS == tuple(torch_butterfly.MODELS)
    assert set(_choices.Solver.__args__) == set(SOLVER_NAMES)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_no_python_types(bfly, command: str) -> None:
    result = bfly(command, "--help")
    assert result.exit_code == 0
    leaked = re.findall(r"<(?:int|float|str|path|bool|list\[[^\]]*\])>", result.output)
    assert not leaked, f"bfly {command} --help shows {leaked}"


@pytest.mark.parametrize("command, flag, listed", [
    ("learn", "--solver", "auto|"), ("learn", "--dtype", "float64|float32"), ("learn", "--norm", "backward|ortho|forward|paper"),
    ("export", "--format", "npz|pt|mat|json"), ("apply", "--dtype", "float32|float64|complex64|complex128"),
])
def test_choices_are_listed_and_enforced(bfly, command: str, flag: str, listed: str) -> None:
    assert listed in bfly(command, "--help").output
    args = {"learn": ("learn", "dft", "--n", "8"), "export": ("export", "x.h5"), "apply": ("apply", "x.h5", "y.npy")}[command]
    refused = bfly(*args, flag, "nonsense")
    assert refused.exit_code == 2
    assert "'nonsense' is not one of" in refused.output


def test_apply_json_describes_the_output(bfly, tmp_path) -> None:
    path = tmp_path / "h.h5"
    assert bfly("learn", "hadamard", "--n", "8", "-o", str(path)).exit_code == 0
    np.save(tmp_path / "x.npy", np.ones((2, 8)))
    result = bfly("apply", str(path), str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy"), "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["shape"] == [2, 8] and document["vectors"] == 2 and document["output"].endswith("y.npy")
    h = scipy.linalg.hadamard(8) / np.sqrt(8)
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), np.ones((2, 8)) @ h.T, atol=1e-12)  # what was written
    refused = bfly("apply", str(path), str(tmp_path / "x.npy"), "--json")
    assert refused.exit_code == 2 and json.loads(refused.stdout)["exit_code"] == 2
