"""--solver auto: the first exact route, recorded with its reasons; bad budgets are exit 2."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from bfly_cli import transforms
from bfly_cli.errors import BflyError
from bfly_cli.factors import Factors, Step
from bfly_cli.learning import learn
from bfly_cli.solvers import RouteUnavailable
from bfly_cli.solvers.auto import probe_error
from bfly_cli.solvers.closed_form.bp_route import _exact_bp_order, solve_bp
from bfly_cli.solvers.closed_form.rank2_route import solve_real_rank2


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
    bp = next(r for r in f.meta["auto_tried"] if r["route"] == "bp")
    assert bp["status"] == "unavailable" and bp["reason"].startswith("not B.P")


@pytest.mark.parametrize("name,n", [("hartley", 64), ("dct", 128), ("dst", 128)])
@pytest.mark.parametrize("shuffle", [False, True])
def test_real_transforms_exact_via_rank2(name: str, n: int, shuffle: bool) -> None:
    """Hartley's conjugate planes and larger shuffled cosine transforms: exact, never approximate."""
    t = transforms.build(name, n)
    if shuffle:
        t = t[:, np.random.default_rng(n + 1).permutation(n)]
    f = learn(t, solver="auto")
    assert f.meta["auto_route"] == "real_rank2"
    assert f.meta["rel_error"] <= 1e-12


@pytest.mark.parametrize("name,size", [("dct", 32), ("hartley", 16)])
def test_bp_probe_rejects_rank2_transforms_before_solving(name: str, size: int) -> None:
    """DCT fails at the top split; Hartley passes it (its rows b and b + N/2 are parallel) and
    fails one level down, before any twiddle is fitted."""
    with pytest.raises(RouteUnavailable, match=f"not B.P: at split size {size},"):
        solve_bp(transforms.build(name, 32))


@pytest.mark.parametrize("shuffle", [False, True])
def test_ambiguous_split_falls_back_to_general_discovery(shuffle: bool) -> None:
    """A diagonal matrix has more than half of its columns 'parallel' at every pair: the clean
    path declines (None) and the general discovery plus certificate still finds the B.P."""
    t = np.diag(np.arange(1.0, 17.0))
    if shuffle:
        t = t[:, np.random.default_rng(1).permutation(16)]
    assert _exact_bp_order(t) is None
    steps, _ = solve_bp(t)
    assert probe_error(Factors(16, steps), t) <= 1e-12


@pytest.mark.parametrize("name", ["dft", "hadamard"])
def test_bp_probe_passes_every_bp(name: str) -> None:
    t = transforms.build(name, 64)
    t = t[:, np.random.default_rng(2).permutation(64)]
    steps, _ = solve_bp(t)
    assert probe_error(Factors(64, steps), t) <= 1e-12


def test_probe_error_tracks_dense_error() -> None:
    """The probe estimate is within a small factor of the dense relative error."""
    t = transforms.build("dct", 32)
    rng = np.random.default_rng(4)
    steps, _ = solve_real_rank2(t)
    noisy = [steps[0], Step("rank2", steps[1].data + 1e-6 * rng.standard_normal(steps[1].data.shape))]
    factors = Factors(32, noisy)
    dense = np.linalg.norm(factors.to_dense() - t) / np.linalg.norm(t)
    assert dense / 3 <= probe_error(factors, t) <= 3 * dense


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


@pytest.mark.parametrize("name,route", [("dft", "bp"), ("hartley", "real_rank2")])
def test_float32_work_dtype(name: str, route: str) -> None:
    """The B.P level test reads complex64 through its float32 view; both routes stay exact."""
    t = transforms.build(name, 64)[:, np.random.default_rng(3).permutation(64)]
    f = learn(t, solver="auto", dtype="float32")
    assert f.meta["auto_route"] == route and f.meta["exact"]


def test_real_param_counts_complex_twice() -> None:
    tw = np.ones((3, 4, 2, 2))
    assert Factors(8, [Step("butterfly", tw)]).n_real_params() == 48
    assert Factors(8, [Step("butterfly", tw.astype(complex)), Step("real")]).n_real_params() == 96
    assert Factors(8, [Step("butterfly", tw.astype(complex))]).n_params() == 48


def test_exact_but_not_compressive_is_flagged_and_strict_budget_caps_it() -> None:
    """Every real 8 x 8 matrix is an exact QP (128 real numbers, the dense matrix has 64): auto
    keeps exactness but says so; --strict-budget returns the approximation within one complex B.P."""
    from bfly_cli.metrics import error_report
    from bfly_cli.solvers.auto import budget_real_params

    t = transforms.build("randn", 8)
    loose = learn(t, solver="auto")
    assert loose.meta["auto_route"] == "real_rank2" and loose.meta["exact"]
    assert "not a compression" in loose.meta["auto_reason"]
    strict = learn(t, solver="auto", solver_options={"strict_budget": True})
    assert strict.meta["auto_route"] == "approximate"
    assert strict.meta["real_params"] <= budget_real_params(8, 1)
    rank2 = next(r for r in strict.meta["auto_tried"] if r["route"] == "real_rank2")
    assert rank2["status"] == "exact, over budget" and rank2["real_params"] > budget_real_params(8, 1)
    assert error_report(strict.to_dense(), t)["rmse"] <= 1.4e-1  # the paper's RMSE for N = 8


def test_strict_budget_keeps_exact_structures_within_the_cap() -> None:
    f = learn(transforms.build("dft", 16), solver="auto", solver_options={"strict_budget": True})
    assert f.meta["auto_route"] == "bp" and f.meta["exact"]
    assert "not a compression" not in f.meta["auto_reason"]


def test_strict_budget_is_auto_only(tmp_path) -> None:
    run = subprocess.run([sys.executable, "-m", "bfly_cli.cli", "learn", "dft", "--n", "8", "--solver", "hierarchical",
                          "--strict-budget", "-o", str(tmp_path / "x.h5")], capture_output=True, text=True)
    assert run.returncode == 2 and "--strict-budget apply to --solver auto" in run.stderr
    assert "Traceback" not in run.stderr and not (tmp_path / "x.h5").exists()


def test_strict_budget_finds_an_exact_real_part_butterfly() -> None:
    """DST-II at N = 8 is Re(B P): over the budget as QP, exact within it once the approximation's
    polish ends near zero and the Gauss-Newton finish takes it to machine precision."""
    f = learn(transforms.build("dst", 8), solver="auto", solver_options={"strict_budget": True})
    assert f.meta["auto_route"] == "approximate" and f.structure == "RBP"
    assert f.meta["exact"] and f.meta["rel_error"] <= 1e-12
    assert "reached an exact fit" in f.meta["auto_reason"]
    assert f.meta["near_exact_finish"]["rel_error_before"] > 1e-12
