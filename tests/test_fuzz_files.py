"""The fuzz suite of #13 (benchmarks/fuzz_files.py) at small scale, with fixed seeds.

Mutated factor and matrix files go through every reading command; no run may show a traceback,
exit outside {0, 1, 2}, take over 10 s or grow memory by over 1 GiB. The full campaign (1,000
mutants and more) is run by hand: ``python benchmarks/fuzz_files.py``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "fuzz_files.py"


@pytest.fixture(scope="module")
def fuzz_module():
    spec = importlib.util.spec_from_file_location("fuzz_files", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["fuzz_files"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("fuzz_files", None)


@pytest.mark.slow  # ~10 s: base files are learned, torch is imported for bench; the full suite runs it
def test_small_campaign_has_no_violation(fuzz_module, capsys):
    code = fuzz_module.main(["--mutants", "24", "--seed", "11", "--subprocess", "1", "--no-rlimit", "--quiet"])
    printed = capsys.readouterr().out
    assert "mutants: 24" in printed and "tracebacks: 0" in printed, printed
    assert code == 0, printed


def test_the_judge_counts_what_it_must(fuzz_module):
    """The fuzzer itself can fail: a traceback, a strange exit code, a slow or hungry run count."""
    tally = fuzz_module.Tally()
    judge = fuzz_module._judge
    judge(["show", "f"], "m", 0, "", None, 0.1, 0, tally)
    judge(["show", "f"], "m", 1, "", RuntimeError("boom"), 0.1, 0, tally)
    judge(["show", "f"], "m", 139, "", None, 0.1, 0, tally)
    judge(["show", "f"], "m", 2, "error: out of memory; try a smaller N", None, 0.1, 0, tally)
    judge(["show", "f"], "m", 0, "", None, 11.0, 2 << 30, tally)
    assert [v[0] for v in tally.violations] == ["traceback", "exit code", "memory", "timeout", "memory"]
    assert tally.runs == 5 and tally.exits["other"] == 1
