"""--solver auto: the first exact route, recorded with its reasons; bad budgets are exit 2."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import transforms
from bfly_cli.errors import BflyError
from bfly_cli.learn import learn


@pytest.mark.parametrize("name,route", [("dft", "bp"), ("hadamard", "bp"), ("dct", "real_rank2"), ("dst", "real_rank2")])
@pytest.mark.parametrize("shuffle", [False, True])
def test_auto_picks_first_exact_route(name: str, route: str, shuffle: bool) -> None:
    t = transforms.build(name, 32)
    if shuffle:
        t = t[:, np.random.default_rng(5).permutation(32)]
    f = learn(t, solver="auto")
    assert f.meta["auto_route"] == route
    assert f.meta["rel_error"] <= 1e-12
    tried = [r["route"] for r in f.meta["auto_tried"]]
    assert tried[-1] == route and tried[0] == "bp"
    assert "exact" in f.meta["auto_reason"]


def test_auto_falls_back_to_approximation_for_randn() -> None:
    f = learn(transforms.build("randn", 8), solver="auto")
    assert f.meta["auto_route"] != "bp"
    assert not f.meta["exact"] or f.meta["auto_route"] == "real_rank2"
    statuses = {r["route"]: r["status"] for r in f.meta["auto_tried"]}
    assert statuses["bp"] == "inexact"


@pytest.mark.parametrize("budget", [0, 9, -1, True, 2.5])
def test_bad_budget_is_bflyerror(budget) -> None:
    with pytest.raises(BflyError, match="budget"):
        learn(transforms.build("dct", 8), solver="auto", solver_options={"budget": budget})


def _bfly(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bfly_cli.cli", *args], capture_output=True, text=True)


def test_cli_default_is_auto_and_budget_errors(tmp_path) -> None:
    out = tmp_path / "d.h5"
    res = _bfly("learn", "dct", "--n", "16", "-o", str(out), "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert "auto" in json.dumps(doc)
    bad = _bfly("learn", "dct", "--n", "16", "--budget", "0", "-o", str(tmp_path / "x.h5"))
    assert bad.returncode == 2 and "budget" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "x.h5").exists()
    wrong = _bfly("learn", "dft", "--n", "8", "--solver", "real_rank2", "-o", str(tmp_path / "y.h5"))
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr
    assert not (tmp_path / "y.h5").exists()
    other = _bfly("learn", "dct", "--n", "8", "--solver", "hierarchical", "--budget", "2", "-o", str(tmp_path / "z.h5"))
    assert other.returncode == 2 and "--budget" in other.stderr
