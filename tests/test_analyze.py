"""bfly analyze: the per-level table and a verdict that agrees with learn --solver auto."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from bfly_cli import transforms
from bfly_cli.analysis import analyze
from bfly_cli.learning import learn


@pytest.mark.parametrize("name", ["dft", "hadamard", "dct", "dst", "hartley", "legendre", "randn"])
@pytest.mark.parametrize("shuffle", [False, True])
def test_verdict_agrees_with_auto(name: str, shuffle: bool) -> None:
    t = transforms.build(name, 32)
    if shuffle:
        t = t[:, np.random.default_rng(11).permutation(32)]
    report = analyze(t)
    f = learn(t, solver="auto")
    assert report["route"] == f.meta["auto_route"] or (report["route"] == "approximate" and not f.meta["exact"])


def test_table_shows_rank_structure() -> None:
    dft = analyze(transforms.build("dft", 16))
    assert all(row["rank1_tail"] < 1e-20 for row in dft["levels"]) and dft["verdict"] == "exact B.P"
    dct = analyze(transforms.build("dct", 16))
    assert max(row["rank1_tail"] for row in dct["levels"]) > 1e-3
    assert all(row["rank2_tail"] < 1e-20 for row in dct["levels"])
    rnd = analyze(transforms.build("randn", 16))
    assert max(row["rank2_tail"] for row in rnd["levels"]) > 1e-3 and rnd["verdict"] == "approximate only"


def test_cli_json_and_human() -> None:
    run = lambda *a: subprocess.run([sys.executable, "-m", "bfly_cli.cli", "analyze", *a], capture_output=True, text=True)
    res = run("dct", "--n", "16", "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["route"] == "real_rank2" and len(doc["levels"]) == 3
    human = run("dft", "--n", "8")
    assert human.returncode == 0 and "verdict: exact B.P" in human.stdout
    bad = run("dct", "--n", "12")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
