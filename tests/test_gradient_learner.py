"""bfly_cli/solvers/gradient/learner.py: recovery from random init, determinism, the log, CLI wiring."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bfly_cli import transforms
from bfly_cli import h5format
from bfly_cli.errors import BflyError
from bfly_cli.factors import Factors, Step
from bfly_cli.learning import learn
from bfly_cli.metrics import error_report
from bfly_cli.solvers.gradient.learner import solve_gradient


def _rel(steps: list[Step], matrix: np.ndarray) -> float:
    return error_report(Factors(matrix.shape[0], steps).to_dense(), matrix)["rel_error"]


@pytest.mark.parametrize("name, n, model", [("dft", 8, "BP"), ("hadamard", 4, "BP"), ("dct", 4, "BPP")])
def test_recovers_exact_targets_from_random_init(name, n, model):
    matrix = transforms.build(name, n)
    factors = learn(matrix, solver="gradient", solver_options={"model": model, "restarts": 4, "seed": 0, "steps": 100})
    assert factors.meta["rel_error"] <= 1e-10
    assert factors.meta["model"] == model
    log = factors.meta["solver_log"]
    assert log[-1]["success"] and not any(r["success"] for r in log[:-1])
    assert {"seed", "lr", "steps", "final_loss", "seconds", "success"} <= set(log[0])


def test_real_target_uses_complex_model_with_real_readout():
    steps, _ = solve_gradient(transforms.build("hadamard", 4), restarts=2, seed=0)
    assert steps[-1].kind == "real"
    assert np.iscomplexobj(steps[-2].data)


@pytest.mark.slow
def test_deterministic_for_a_seed_on_cpu():
    matrix = transforms.build("dft", 4)
    a, meta_a = solve_gradient(matrix, restarts=2, seed=3)
    b, meta_b = solve_gradient(matrix, restarts=2, seed=3)
    assert [s.kind for s in a] == [s.kind for s in b]
    for x, y in zip(a, b):
        assert (x.data is None and y.data is None) or np.array_equal(x.data, y.data)
    strip = lambda log: [{k: v for k, v in r.items() if k != "seconds"} for r in log]  # noqa: E731
    assert strip(meta_a["solver_log"]) == strip(meta_b["solver_log"])


def test_different_seeds_draw_different_restarts():
    matrix = transforms.build("dft", 4)
    _, a = solve_gradient(matrix, restarts=1, seed=0, steps=25)
    _, b = solve_gradient(matrix, restarts=1, seed=1, steps=25)
    assert (a["solver_log"][0]["seed"], a["solver_log"][0]["lr"]) != (b["solver_log"][0]["seed"], b["solver_log"][0]["lr"])


def test_stops_at_first_success_and_logs_failures():
    matrix = transforms.build("dft", 8)
    _, meta = solve_gradient(matrix, restarts=3, seed=0, steps=0, search=False, polish_iters=5)
    assert 1 <= len(meta["solver_log"]) <= 3
    assert all(not r["success"] for r in meta["solver_log"][:-1])


def test_single_precision_input_gives_single_precision_twiddles():
    steps, _ = solve_gradient(transforms.build("dft", 4).astype(np.complex64), restarts=2, seed=3)
    assert {s.data.dtype for s in steps if s.kind == "butterfly"} == {np.dtype(np.complex64)}


def test_solver_log_survives_the_file(tmp_path):
    matrix = transforms.build("dft", 4)
    factors = learn(matrix, solver="gradient", solver_options={"restarts": 2, "seed": 0})
    back = h5format.load(h5format.save(factors, tmp_path / "g.h5"))
    assert back.meta["solver_log"] == factors.meta["solver_log"]
    assert back.meta["model"] == "BP"


def test_restart_log_records_the_repair():
    """Rounded from random logits (no Adam step; seed 1 rounds two choices wrong), the log shows
    a repair that changed choices and ended at an exact order. test_order_route checks the count."""
    _, meta = solve_gradient(transforms.build("dft", 8), restarts=1, seed=1, steps=0)
    record = meta["solver_log"][0]
    assert record["search_score"] <= 1e-12 and record["fit_tries"] >= 1 and record["orders"] >= 1
    assert record["flips"] > 0 and record["fitted"] == "complex"


def test_bad_options_are_checked_before_any_work():
    with pytest.raises(BflyError, match="unknown real_model"):
        solve_gradient(transforms.build("dct", 4), real_model="bogus", on_progress=pytest.fail)


def test_unknown_option_is_named():
    with pytest.raises(BflyError, match="no option 'bogus'"):
        learn(transforms.build("dft", 4), solver="gradient", solver_options={"bogus": 1})


@pytest.mark.slow
def test_rank2_model_fits_a_real_rank2_target_from_random_init():
    matrix = transforms.build("dct", 8)  # no real butterfly order: rank 2 is needed
    options = {"model": "BPP", "restarts": 2, "seed": 0, "steps": 50, "real_model": "rank2"}
    factors = learn(matrix, solver="gradient", solver_options=options)
    assert factors.meta["rel_error"] <= 1e-10
    assert [s.kind for s in factors.steps] == ["permutation", "rank2"]
    assert factors.meta["solver_log"][-1]["fitted"] == "rank2"
    again = learn(matrix, solver="gradient", solver_options=options)
    assert all(np.array_equal(a.data, b.data) for a, b in zip(factors.steps, again.steps))  # deterministic


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cli_device_cuda_without_gpu_exits_2(bfly, tmp_path):
    result = bfly("learn", "dft", "--n", "4", "--solver", "gradient", "--device", "cuda", "-o", tmp_path / "x.h5")
    assert result.exit_code == 2
    assert "cuda" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_cli_gradient_options_rejected_for_other_solvers(bfly, tmp_path):
    result = bfly("learn", "dft", "--n", "4", "--solver", "hierarchical", "--model", "BPP", "-o", tmp_path / "x.h5")
    assert result.exit_code == 2 and "--model" in result.stderr


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_learner_runs_on_cuda():
    steps, meta = solve_gradient(transforms.build("dft", 8), restarts=4, seed=0, device="cuda")
    assert _rel(steps, transforms.build("dft", 8)) <= 1e-10 and meta["solver_device"] == "cuda"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
@pytest.mark.parametrize("name, n, model, real_model", [("dct", 16, "BPP", "rank2"), ("hartley", 8, "BP", "complex"),
                                                        ("convolution", 8, "BPBP", "auto")])
def test_every_route_runs_on_cuda(name, n, model, real_model):
    """Relaxed phase, repair, rank-2 LM and complex polish all run on the GPU."""
    matrix = transforms.build(name, n)
    steps, meta = solve_gradient(matrix, model=model, restarts=4, seed=0, device="cuda", real_model=real_model)
    assert meta["solver_device"] == "cuda"
    assert _rel(steps, matrix) <= 1e-10


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_cli_learn_on_cuda_writes_a_verified_file(bfly, tmp_path):
    out = tmp_path / "g.h5"
    result = bfly("learn", "dft", "--n", "32", "--solver", "gradient", "--device", "cuda", "--seed", "1",
                  "-o", out, "--json")
    assert result.exit_code == 0, result.stderr
    assert bfly("verify", out).exit_code == 0
