"""The gradient solver: recovery from random init, determinism, polish, options, CLI wiring."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import transforms
from bfly_cli import h5format
from bfly_cli.errors import BflyError
from bfly_cli.factors import Factors, Step
from bfly_cli.learn import learn
from bfly_cli.metrics import error_report
from bfly_cli.solvers.gradient.learner import solve_gradient
from bfly_cli.solvers.gradient.refine import polish


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


@pytest.mark.parametrize("name", ["legendre", "randn"])
def test_polish_never_worse_than_closed_form(name):
    from bfly_cli.solvers.closed_form.hierarchical import factor_butterfly

    matrix = transforms.build(name, 8)
    perm = np.arange(8)
    start = [Step("permutation", perm), Step("butterfly", factor_butterfly(matrix[:, perm]))]
    before = _rel(start, matrix)
    after = _rel(polish(matrix, start, max_iter=100), matrix)
    assert after <= before * (1 + 1e-12)


def test_polish_returns_input_error_when_nothing_helps():
    matrix = transforms.build("dft", 8)
    exact = learn(matrix, solver="hierarchical").steps
    assert _rel(polish(matrix, exact, max_iter=20), matrix) <= max(_rel(exact, matrix), 1e-15) * (1 + 1e-9)


def test_polish_improves_a_perturbed_exact_factorization():
    matrix = transforms.build("dft", 8)
    exact = learn(matrix, solver="hierarchical").steps
    noisy = [Step(s.kind, s.data + 1e-3 * np.random.default_rng(0).standard_normal(s.data.shape))
             if s.kind == "butterfly" else s for s in exact]
    assert _rel(polish(matrix, noisy, max_iter=200, target=1e-12), matrix) < 1e-10 < _rel(noisy, matrix)


@pytest.mark.parametrize("options, match", [
    ({"model": "BBP"}, "unknown model"),
    ({"field": "real"}, "complex matrix"),
    ({"restarts": 0}, "restarts"),
    ({"lr": -1.0}, "lr"),
    ({"device": "tpu"}, "unknown device"),
])
def test_bad_options_are_one_line_errors(options, match):
    with pytest.raises(BflyError, match=match):
        solve_gradient(transforms.build("dft", 4), **options)


def test_solver_log_survives_the_file(tmp_path):
    matrix = transforms.build("dft", 4)
    factors = learn(matrix, solver="gradient", solver_options={"restarts": 2, "seed": 0})
    back = h5format.load(h5format.save(factors, tmp_path / "g.h5"))
    assert back.meta["solver_log"] == factors.meta["solver_log"]
    assert back.meta["model"] == "BP"


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cli_device_cuda_without_gpu_exits_2(tmp_path):
    from typer.testing import CliRunner

    from bfly_cli.cli import app

    result = CliRunner().invoke(app, ["learn", "dft", "--n", "4", "--solver", "gradient", "--device", "cuda",
                                      "-o", str(tmp_path / "x.h5")])
    assert result.exit_code == 2
    assert "cuda" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_cli_gradient_options_rejected_for_other_solvers(tmp_path):
    from typer.testing import CliRunner

    from bfly_cli.cli import app

    result = CliRunner().invoke(app, ["learn", "dft", "--n", "4", "--solver", "hierarchical", "--model", "BPP",
                                      "-o", str(tmp_path / "x.h5")])
    assert result.exit_code == 2 and "--model" in result.stderr


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_learner_runs_on_cuda():
    steps, meta = solve_gradient(transforms.build("dft", 8), restarts=4, seed=0, device="cuda")
    assert _rel(steps, transforms.build("dft", 8)) <= 1e-10 and meta["solver_device"] == "cuda"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
@pytest.mark.parametrize("name, n, model, real_model", [("dct", 16, "BPP", "rank2"), ("hartley", 8, "BP", "complex"),
                                                        ("convolution", 8, "BPBP", "auto")])
def test_every_route_runs_on_cuda(name, n, model, real_model):
    """Relaxed phase, repair, rank-2 LM and complex polish all run on the GPU and agree on the CPU."""
    matrix = transforms.build(name, n)
    steps, meta = solve_gradient(matrix, model=model, restarts=4, seed=0, device="cuda", real_model=real_model)
    assert meta["solver_device"] == "cuda"
    assert _rel(steps, matrix) <= 1e-10


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_cli_learn_on_cuda_writes_a_verified_file(tmp_path):
    from typer.testing import CliRunner

    from bfly_cli.cli import app

    out = tmp_path / "g.h5"
    result = CliRunner().invoke(app, ["learn", "dft", "--n", "32", "--solver", "gradient", "--device", "cuda",
                                      "--seed", "1", "-o", str(out), "--json"])
    assert result.exit_code == 0, result.stderr
    assert CliRunner().invoke(app, ["verify", str(out)]).exit_code == 0


# --- closed-form permutation repair (bfly_cli/solvers/permutation_search.py) -------------------


def _perm(n: int, choices: np.ndarray) -> np.ndarray:
    from bfly_cli.torch_butterfly import permutation_from_choices

    return permutation_from_choices(n, choices)


def test_split_tail_is_zero_exactly_for_a_butterfly_order():
    from bfly_cli.solvers.gradient.choice_repair import score
    from bfly_cli.torch_butterfly import bit_reversal

    matrix = transforms.build("dft", 16)
    assert score(matrix, bit_reversal(16), rank=1) <= 1e-14
    assert score(matrix, np.arange(16), rank=1) > 1e-3
    assert score(matrix, np.random.default_rng(0).permutation(16), rank=1) > 1e-3


def _exact_tails(ordered: np.ndarray, rank: int) -> list[float]:
    """Energy beyond ``rank`` of every split level's blocks, by full SVDs (independent of the module)."""
    n = ordered.shape[0]
    out = []
    for lev in range(1, n.bit_length() - 1):
        hi, lo = n >> lev, 1 << lev
        blocks = ordered.reshape(hi, lo, hi, lo).transpose(2, 1, 0, 3)
        out.append(float(np.sum(np.linalg.svd(blocks, compute_uv=False)[..., rank:] ** 2)))
    return out


def test_split_tail_matches_svd_and_reversing_both_halves_is_a_gauge():
    from bfly_cli.solvers.gradient.choice_repair import level_scores

    matrix = transforms.build("dct", 16)
    base = np.random.default_rng(1).random((3, 3)) < 0.5
    flipped = base.copy()
    flipped[1, 1:] = ~flipped[1, 1:]
    exact = _exact_tails(matrix[:, _perm(16, base)], 2)
    assert np.allclose(exact, _exact_tails(matrix[:, _perm(16, flipped)], 2), atol=1e-12)
    sketched = level_scores(matrix, _perm(16, base), 2)[::-1] * np.sum(matrix**2)
    assert np.all(sketched >= np.array(exact) - 1e-12) and np.allclose(sketched, exact, rtol=0.2, atol=1e-12)


@pytest.mark.parametrize("name, rank", [("dft", 1), ("hartley", 2)])
def test_single_search_repairs_a_wrong_rounding(name, rank):
    from bfly_cli.solvers.closed_form.hierarchical import factor_butterfly
    from bfly_cli.solvers.gradient.choice_repair import EXACT, search_single

    n = 32
    matrix = transforms.build(name, n)
    start = np.random.default_rng(2).random((4, 3)) < 0.5
    found = search_single(matrix, start, rank)
    assert found.score <= EXACT
    if rank == 1:  # oracle: the closed-form factorization of the repaired order is exact
        perm = _perm(n, found.choices[0])
        steps = [Step("permutation", perm), Step("butterfly", factor_butterfly(matrix[:, perm]))]
        assert _rel(steps, matrix) <= 1e-12


def test_single_search_keeps_a_right_rounding():
    from bfly_cli.solvers.gradient.choice_repair import search_single

    right = np.array([[1, 0, 1], [1, 1, 0], [1, 0, 0]], dtype=bool)  # separate everywhere: bit reversal
    found = search_single(transforms.build("dft", 16), right, 1)
    assert found.evaluated == 1 and np.array_equal(found.choices[0], right)


def test_pair_search_finds_a_rank2_order_for_dct():
    from bfly_cli.solvers.gradient.choice_repair import EXACT, score, search_pair

    matrix = transforms.build("dct", 16)
    rng = np.random.default_rng(3)
    found = search_pair(matrix, rng.random((3, 3)) < 0.5, rng.random((3, 3)) < 0.5, 2)
    merged = _perm(16, found.choices[0])[_perm(16, found.choices[1])]
    assert found.score <= EXACT and score(matrix, merged, 2) <= EXACT


def test_restart_log_records_the_repair():
    _, meta = solve_gradient(transforms.build("dft", 8), restarts=1, seed=0, steps=50)
    record = meta["solver_log"][0]
    assert record["search_score"] <= 1e-12 and record["fit_tries"] >= 1 and record["flips"] >= 0


def test_unknown_option_is_named():
    with pytest.raises(BflyError, match="no option 'bogus'"):
        learn(transforms.build("dft", 4), solver="gradient", solver_options={"bogus": 1})


def test_excluded_orders_are_skipped():
    from bfly_cli.solvers.gradient.choice_repair import EXACT, order_key, search_single

    matrix = transforms.build("dft", 16)
    start = np.array([[1, 0, 0], [1, 0, 0], [1, 0, 0]], dtype=bool)
    first = search_single(matrix, start, 1)
    again = search_single(matrix, start, 1, exclude=frozenset({order_key(_perm(16, first.choices[0]))}))
    assert first.score <= EXACT
    assert order_key(_perm(16, again.choices[0])) != order_key(_perm(16, first.choices[0]))


# --- the real rank-2 model for real targets whose orders need rank 2 ----------------------------


def test_rank2_model_fits_a_real_rank2_target_from_random_init():
    matrix = transforms.build("dct", 8)  # no real butterfly order: rank 2 is needed
    factors = learn(matrix, solver="gradient",
                    solver_options={"model": "BPP", "restarts": 2, "seed": 0, "steps": 50, "real_model": "rank2"})
    assert factors.meta["rel_error"] <= 1e-10
    assert [s.kind for s in factors.steps] == ["permutation", "rank2"]
    assert factors.meta["solver_log"][-1]["fitted"] == "rank2"
    again = learn(matrix, solver="gradient",
                  solver_options={"model": "BPP", "restarts": 2, "seed": 0, "steps": 50, "real_model": "rank2"})
    assert all(np.array_equal(a.data, b.data) for a, b in zip(factors.steps, again.steps))  # deterministic


def test_rank2_normal_equations_match_the_explicit_jacobian():
    from torch.func import jacfwd

    from bfly_cli.solvers.gradient.rank2_als import normal_equations
    from bfly_cli.torch_ops import rank2_multiply_torch

    n = 8
    target = torch.as_tensor(transforms.build("dct", n).T)
    perm = np.random.default_rng(0).permutation(n)
    stages = torch.as_tensor(np.random.default_rng(1).standard_normal((3, n // 2, 2, 2, 2, 2)))
    eye = torch.eye(n, dtype=torch.float64)

    def resid(st):
        return (rank2_multiply_torch(st, eye[:, perm]) - target).reshape(-1)

    jac = jacfwd(resid)(stages).reshape(n * n, -1)
    jtj, jtr = normal_equations(torch.as_tensor(perm), stages, 1.0, jac.T @ resid(stages))
    assert torch.allclose(jtj, jac.T @ jac, atol=1e-12)


def _random_rank2_problem(n: int, seed: int):
    """An exactly rank-2 target (random stages, random order) and a random start, transposed."""
    from bfly_cli.solvers.gradient.rank2_als import model_output

    rng = np.random.default_rng(seed)
    levels = int(np.log2(n))
    perm = rng.permutation(n)
    truth = torch.as_tensor(rng.standard_normal((levels, n // 2, 2, 2, 2, 2)) * 0.7)
    start = torch.as_tensor(rng.standard_normal((levels, n // 2, 2, 2, 2, 2)) * 0.5)
    return perm, model_output(perm, truth), start


def test_level_solve_is_the_exact_least_squares_of_that_level():
    """One level with the others fixed: the solve matches lstsq on the explicit Jacobian."""
    from torch.func import jacfwd

    from bfly_cli.solvers.gradient.rank2_als import _solve_level, param_index, readout, states_before
    from bfly_cli.torch_ops import rank2_multiply_torch

    n, lev = 8, 1
    perm, target, stages = _random_rank2_problem(n, 3)
    before, after = states_before(perm, stages)[lev], readout(stages, lev)
    solved = _solve_level(before, after, target, stages[lev], param_index(n, lev))
    eye = torch.eye(n, dtype=torch.float64)

    def resid(level_entries):
        st = torch.cat([stages[:lev], level_entries[None], stages[lev + 1:]])
        return (rank2_multiply_torch(st, eye[:, perm]) - target).reshape(-1)

    jac = jacfwd(resid)(stages[lev]).reshape(n * n, -1)
    best = torch.linalg.lstsq(jac, -(resid(stages[lev]) - jac @ stages[lev].reshape(-1))).solution
    assert torch.allclose(resid(solved).square().sum(), resid(best.reshape(stages[lev].shape)).square().sum(),
                          rtol=1e-8, atol=1e-20)


@pytest.mark.parametrize("seed", [0, 1])
def test_alternating_least_squares_reaches_an_exact_rank2_target(seed):
    from bfly_cli.solvers.gradient.refine import refine_steps
    from bfly_cli.solvers.gradient.rank2_als import alternate, relative_loss

    n = 16
    perm, target, start = _random_rank2_problem(n, seed)
    steps, loss = refine_steps(target, [Step("permutation", perm), Step("rank2", start.numpy())], 100, 0.0)
    stages, final = alternate(perm, torch.as_tensor(steps[1].data), target, 1e-24)
    assert final <= min(loss, 1e-20)
    assert final == pytest.approx(relative_loss(perm, stages, target, float(target.square().sum())))


def test_alternating_least_squares_never_returns_worse_than_its_start():
    from bfly_cli.solvers.gradient.rank2_als import alternate, relative_loss

    perm, _, start = _random_rank2_problem(8, 5)
    target = torch.as_tensor(np.random.default_rng(9).standard_normal((8, 8)))  # not rank-2 exact
    norm2 = float(target.square().sum())
    stages, loss = alternate(perm, start, target, 0.0, sweeps=5)
    assert loss <= relative_loss(perm, start, target, norm2)


def test_level_solver_damps_a_slightly_indefinite_system_instead_of_failing():
    from bfly_cli.solvers.gradient.rank2_als import scaled_solver

    gram = torch.tensor([[1.0, 1.0 + 1e-11], [1.0 + 1e-11, 1.0]], dtype=torch.float64)  # eigenvalue -1e-11
    solve = scaled_solver(gram)
    assert solve is not None
    x = solve(torch.tensor([1.0, 1.0], dtype=torch.float64))
    assert torch.isfinite(x).all() and torch.allclose(gram @ x, torch.tensor([1.0, 1.0], dtype=torch.float64), atol=1e-3)
    assert scaled_solver(torch.tensor([[1.0, 2.0], [2.0, 1.0]], dtype=torch.float64)) is None  # eigenvalue -1


# --- BPBP: the outside-in fit (bfly_cli/solvers/mirror_split.py) ---------------------------------


def test_outside_in_fit_is_exact_for_a_circulant_and_refuses_a_non_bpbp():
    from bfly_cli.solvers.gradient.bpbp_split import fit_mirror

    n = 16
    conv = transforms.build("convolution", n, seed=3)
    steps, worst = fit_mirror(torch.as_tensor(conv).to(torch.complex128), np.arange(n), seed=0)
    assert [s.kind for s in steps] == ["permutation", "butterfly", "permutation", "butterfly"]
    assert _rel(steps, conv) <= 1e-12 and worst <= 1e-12
    assert fit_mirror(torch.as_tensor(transforms.build("legendre", 8)).to(torch.complex128), np.arange(8), 0) is None


def test_outside_in_fit_recovers_a_circulant_in_a_shuffled_order():
    """Columns shuffled by a known order: the fit in that order is exact, and the returned first
    permutation undoes the shuffle (the solver never sees how the target was made)."""
    from bfly_cli.solvers.gradient.bpbp_split import fit_mirror

    n, rng = 16, np.random.default_rng(4)
    order = rng.permutation(n)
    shuffled = np.empty((n, n))
    shuffled[:, order] = transforms.build("convolution", n, seed=5)  # shuffled[:, order] is the circulant
    steps, _ = fit_mirror(torch.as_tensor(shuffled), order, seed=1)
    assert _rel(steps, shuffled) <= 1e-10


def test_learner_fits_convolution_bpbp_with_the_outside_in_fit():
    matrix = transforms.build("convolution", 32)
    factors = learn(matrix, solver="gradient", solver_options={"model": "BPBP", "restarts": 2, "seed": 0, "steps": 50})
    assert factors.meta["rel_error"] <= 1e-10
    assert factors.meta["solver_log"][0]["fitted"] == "mirror" and factors.meta["restarts_used"] == 1
    assert [s.kind for s in factors.steps] == ["permutation", "butterfly", "permutation", "butterfly", "real"]


def test_unknown_real_model_is_named():
    with pytest.raises(BflyError, match="real_model"):
        solve_gradient(transforms.build("dct", 4), real_model="bogus")
