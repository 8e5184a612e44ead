"""The compiled kernel against its twin, the numpy reference multiply in ``factors.py``.

Random factors use every step kind; each 2x2 twiddle block is a random unitary (orthogonal when
real) times a scale in [0.5, 1.5], so errors measure the kernel and not ill-conditioning. Errors
are norm-wise per vector, relative to the reference.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from bfly_cli import kernel
from bfly_cli.factors import Factors, Step, rank2_multiply

needs_ext = pytest.mark.skipif(not kernel.available(), reason="compiled kernel not built")
TOL = {np.float32: 1e-6, np.complex64: 1e-6, np.float64: 1e-13, np.complex128: 1e-13}
ALL_KINDS = ("permutation", "butterfly", "diagonal", "permutation", "butterfly", "real")


def random_twiddles(n: int, rng: np.random.Generator, complex_: bool) -> np.ndarray:
    levels = n.bit_length() - 1
    g = rng.standard_normal((levels, n // 2, 2, 2))
    if complex_:
        g = g + 1j * rng.standard_normal(g.shape)
    q, _ = np.linalg.qr(g)
    return q * rng.uniform(0.5, 1.5, (levels, n // 2, 1, 1))


def random_rank2(n: int, rng: np.random.Generator) -> np.ndarray:
    """Rank-2 stages whose 4x4 blocks are orthogonal times a scale in [0.5, 1.5] (well conditioned)."""
    levels = n.bit_length() - 1
    q, _ = np.linalg.qr(rng.standard_normal((levels, n // 2, 4, 4)))
    q = q * rng.uniform(0.5, 1.5, (levels, n // 2, 1, 1))
    # block row (o, s), column (c, r) -> data[l, i, o, s, c, r]
    return np.ascontiguousarray(q.reshape(levels, n // 2, 2, 2, 2, 2))


def random_factors(n: int, rng: np.random.Generator, complex_: bool, kinds=ALL_KINDS) -> Factors:
    steps = []
    for kind in kinds:
        if kind == "permutation":
            steps.append(Step(kind, rng.permutation(n)))
        elif kind == "butterfly":
            steps.append(Step(kind, random_twiddles(n, rng, complex_)))
        elif kind == "rank2":
            steps.append(Step(kind, random_rank2(n, rng)))
        elif kind == "diagonal":
            d = rng.uniform(0.5, 1.5, n)
            steps.append(Step(kind, d * np.exp(2j * np.pi * rng.random(n)) if complex_ else d))
        else:
            steps.append(Step(kind))
    return Factors(n, steps)


def random_input(shape: tuple[int, ...], dtype, rng: np.random.Generator) -> np.ndarray:
    x = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        x = x + 1j * rng.standard_normal(shape)
    return x.astype(dtype)


def rel_error(got: np.ndarray, ref: np.ndarray) -> float:
    ref = ref.astype(np.complex128 if ref.dtype.kind == "c" else np.float64)
    num = np.linalg.norm((got - ref).reshape(-1, ref.shape[-1]), axis=-1)
    den = np.linalg.norm(ref.reshape(-1, ref.shape[-1]), axis=-1)
    return float(np.max(num / den))


def check_plan(factors: Factors, dtype, batch: tuple[int, ...], rng: np.random.Generator, threads: int = 1) -> None:
    """Kernel in ``dtype``'s precision vs the reference on the same cast factors and input."""
    plan = kernel.Plan(factors, dtype)
    assert plan.compiled
    x = random_input((*batch, factors.n), dtype, rng)
    ref = plan.factors.apply_reference(x)
    got = plan.apply(x, threads=threads)
    assert got.dtype == ref.dtype == plan.out_dtype
    assert got.shape == ref.shape
    assert rel_error(got, ref) <= TOL[np.dtype(dtype).type]


@needs_ext
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64, np.complex128])
@pytest.mark.parametrize("complex_factors", [False, True])
@pytest.mark.parametrize("n", [2, 4, 8, 16, 32, 64, 128, 256, 1024])
def test_all_step_kinds_match_reference(n, complex_factors, dtype):
    rng = np.random.default_rng(n)
    check_plan(random_factors(n, rng, complex_factors), dtype, (5,), rng)


@needs_ext
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64, np.complex128])
def test_large_n(dtype):
    rng = np.random.default_rng(1)
    factors = random_factors(16384, rng, np.dtype(dtype).kind == "c", ("permutation", "butterfly"))
    check_plan(factors, dtype, (2,), rng)


@needs_ext
@pytest.mark.parametrize("n,batch", [(16, (1000,)), (64, (1,)), (512, (1000,)), (4096, (3, 7))])
def test_batches_and_threads(n, batch):
    rng = np.random.default_rng(2)
    check_plan(random_factors(n, rng, True), np.complex128, batch, rng, threads=2)
    check_plan(random_factors(n, rng, False), np.float32, batch, rng, threads=3)


@needs_ext
@pytest.mark.parametrize("kinds", [("butterfly",), ("diagonal",), ("permutation",), ("butterfly", "real"),
                                   ("real", "butterfly"), ("diagonal", "butterfly", "diagonal")])
def test_short_chains(kinds):
    rng = np.random.default_rng(3)
    for complex_ in (False, True):
        check_plan(random_factors(256, rng, complex_, kinds), np.complex64, (4,), rng)
        check_plan(random_factors(256, rng, complex_, kinds), np.float64, (4,), rng)


@needs_ext
@pytest.mark.parametrize("x_dtype", [np.float32, np.float64, np.complex64, np.complex128, np.int64])
@pytest.mark.parametrize("factor_dtype", [np.float32, np.float64, np.complex64, np.complex128])
def test_apply_has_reference_semantics(x_dtype, factor_dtype):
    """kernel.apply promotes exactly like Factors.apply: same dtype, same values."""
    rng = np.random.default_rng(4)
    factors = kernel.cast_factors(random_factors(64, rng, np.dtype(factor_dtype).kind == "c"), factor_dtype)
    x = random_input((3, 64), np.float64, rng).astype(x_dtype) if x_dtype is np.int64 else random_input((3, 64), x_dtype, rng)
    ref = factors.apply_reference(x)
    got = kernel.apply(factors, x)
    assert got.dtype == ref.dtype
    assert rel_error(got, ref) <= TOL[np.dtype(got.dtype).type]


@needs_ext
def test_threads_do_not_change_the_result():
    rng = np.random.default_rng(5)
    plan = kernel.Plan(random_factors(1024, rng, True), np.complex64)
    x = random_input((64, 1024), np.complex64, rng)
    np.testing.assert_array_equal(plan.apply(x, threads=1), plan.apply(x, threads=4))


@needs_ext
@pytest.mark.parametrize("batch", [1, 2, 3, 7, 64, 257])
def test_pool_gives_the_same_bits_for_any_thread_count(batch):
    """The extension's run() directly, so even tiny batches go through the worker pool (the
    Python side would keep them on one thread); calls are repeated so the pool is reused."""
    rng = np.random.default_rng(batch)
    for n, dtype in ((1024, np.complex64), (64, np.float64), (4096, np.float32)):
        plan = kernel.Plan(random_factors(n, rng, np.dtype(dtype).kind == "c"), dtype)
        x = random_input((batch, n), dtype, rng)
        one = np.empty_like(x)
        plan._core.run(x, one, 1)
        for threads in (2, 3, 8, 2, 1, 2):
            got = np.full_like(x, np.nan)
            plan._core.run(x, got, threads)
            np.testing.assert_array_equal(got, one)


@needs_ext
def test_concurrent_callers_share_the_pool():
    """Python threads calling at once (GIL released): one batch runs on the pool, the others start
    their own threads, and callers of the same plan share its scratch one at a time."""
    rng = np.random.default_rng(21)
    plans = [kernel.Plan(random_factors(n, rng, True), np.complex64) for n in (256, 1024)]
    inputs = [random_input((40, p.n), np.complex64, rng) for p in plans]
    expected = [p.apply(x, threads=1) for p, x in zip(plans, inputs)]
    failures: list[str] = []

    def caller(k: int) -> None:
        for rep in range(20):
            j = (k + rep) % 2
            got = plans[j].apply(inputs[j], threads=1 + (k + rep) % 3)
            if not np.array_equal(got, expected[j]):
                failures.append(f"caller {k} rep {rep}")

    callers = [threading.Thread(target=caller, args=(k,)) for k in range(4)]
    for t in callers:
        t.start()
    for t in callers:
        t.join()
    assert failures == []


POOL_SCRIPT = textwrap.dedent("""
    import os, sys
    import numpy as np
    sys.path.insert(0, {tests!r})
    from test_kernel import random_factors, random_input
    from bfly_cli import _kernel, kernel

    rng = np.random.default_rng(0)
    plan = kernel.Plan(random_factors(512, rng, True), np.complex64)
    x = random_input((33, 512), np.complex64, rng)
    one = plan.apply(x, threads=1)
    assert np.array_equal(plan.apply(x, threads=2), one)
    assert _kernel._pool_workers() == 1  # the parent now has a pool
    pid = os.fork()
    if pid == 0:  # the child has no workers: it must build its own pool, not wait on the parent's
        ok = _kernel._pool_workers() == 0
        ok &= all(np.array_equal(plan.apply(x, threads=t), one) for t in (2, 3, 2))
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    assert np.array_equal(plan.apply(x, threads=2), one)
    print("ok")  # then exit with idle workers alive: must not hang or crash
""")


@needs_ext
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_pool_survives_fork_and_exit():
    script = POOL_SCRIPT.format(tests=str(Path(__file__).parent))
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "ok"


@needs_ext
def test_nan_propagates_like_reference():
    rng = np.random.default_rng(6)
    factors = random_factors(128, rng, True, ("permutation", "butterfly"))
    x = random_input((2, 128), np.complex128, rng)
    x[0, 17] = np.nan
    got, ref = kernel.apply(factors, x), factors.apply_reference(x)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    assert np.isnan(got[0]).all() and not np.isnan(got[1]).any()


@needs_ext
def test_out_argument_and_in_place():
    rng = np.random.default_rng(7)
    factors = random_factors(256, rng, True, ("permutation", "butterfly"))
    plan = kernel.Plan(factors, np.complex128)
    x = random_input((3, 256), np.complex128, rng)
    ref = factors.apply_reference(x)
    out = np.empty_like(x)
    assert plan.apply(x, out) is out
    assert rel_error(out, ref) <= 1e-13
    assert plan.apply(x, x) is x  # in place: each vector is read before it is written
    assert rel_error(x, ref) <= 1e-13
    with pytest.raises(ValueError, match="out must be"):
        plan.apply(x, np.empty((3, 256), np.complex64))


@needs_ext
def test_odd_shapes():
    rng = np.random.default_rng(8)
    factors = random_factors(32, rng, False)
    assert kernel.apply(factors, np.zeros((0, 32))).shape == (0, 32)
    x = random_input((4, 64), np.float64, rng)[:, ::2]  # not contiguous
    assert rel_error(kernel.apply(factors, x), factors.apply_reference(x)) <= 1e-13
    x = random_input((32,), np.float64, rng)
    assert rel_error(kernel.apply(factors, x)[None], factors.apply_reference(x)[None]) <= 1e-13
    with pytest.raises(ValueError, match="length 32"):
        kernel.apply(factors, np.zeros((2, 16)))
    with pytest.raises(ValueError, match="threads"):
        kernel.Plan(factors, np.float64).apply(np.zeros(32), threads=0)


@needs_ext
def test_extension_rejects_bad_plans():
    ext = kernel._ext
    with pytest.raises(ValueError, match="power of two"):
        ext.Plan(12, False, True, [])
    with pytest.raises(ValueError, match="out of range"):
        ext.Plan(4, False, True, [(kernel._OP_GATHER, 0, 0, 0, 0, np.array([0, 1, 2, 9], np.int32))])
    with pytest.raises(ValueError, match="bytes"):
        ext.Plan(4, False, True, [(kernel._OP_BF, 1, 0, 0, 1, np.zeros(3))])
    with pytest.raises(ValueError, match="bytes"):  # a middle rank2 stage needs 16 planes, not 8
        ext.Plan(4, False, True, [(kernel._OP_R2, 1, 0, 0, 1, np.zeros(16), 0)])
    with pytest.raises(ValueError, match="flags"):
        ext.Plan(4, False, True, [(kernel._OP_R2, 1, 0, 0, 1, np.zeros(16), 7)])
    with pytest.raises(ValueError, match="stride"):
        ext.Plan(8, False, True, [(kernel._OP_R2, 2, 0, 0, 1, np.zeros(32), 1)])
    plan = ext.Plan(4, False, True, [])
    with pytest.raises(TypeError, match="element format"):
        plan.run(np.zeros(4, np.float32), np.zeros(4, np.float32))


ALL_DTYPES = [np.float32, np.float64, np.complex64, np.complex128]


@needs_ext
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("n", [2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096])
def test_rank2_matches_rank2_multiply(n, dtype):
    """The DCT-style chain [permutation, rank2] against the reference ``rank2_multiply`` itself."""
    rng = np.random.default_rng(100 + n)
    perm, stages = rng.permutation(n), random_rank2(n, rng)
    plan = kernel.Plan(Factors(n, [Step("permutation", perm), Step("rank2", stages)]), dtype)
    assert plan.compiled
    x = random_input((3, n), dtype, rng)
    ref = rank2_multiply(plan.factors.steps[1].data, x[..., perm])
    got = plan.apply(x)
    assert got.dtype == ref.dtype == plan.out_dtype
    assert rel_error(got, ref) <= TOL[np.dtype(dtype).type]


@needs_ext
@pytest.mark.parametrize("kinds", [("rank2", "permutation", "rank2"), ("permutation", "rank2", "butterfly", "real"),
                                   ("diagonal", "rank2", "permutation", "butterfly", "rank2", "diagonal")])
@pytest.mark.parametrize("n", [2, 16, 64, 2048])
def test_rank2_mixed_with_other_steps(n, kinds):
    rng = np.random.default_rng(200 + n)
    for complex_factors in (False, True):
        factors = random_factors(n, rng, complex_factors, kinds)
        for dtype in ALL_DTYPES:
            check_plan(factors, dtype, (2,), rng)


@needs_ext
@pytest.mark.parametrize("n,batch", [(8, (100,)), (32, (1,)), (256, (7, 11)), (1024, (37,)), (4096, (3,))])
def test_rank2_batches_and_threads(n, batch):
    rng = np.random.default_rng(300 + n)
    factors = random_factors(n, rng, False, ("permutation", "rank2"))
    for dtype, threads in ((np.float32, 2), (np.complex128, 3), (np.float64, 1), (np.complex64, 2)):
        check_plan(factors, dtype, batch, rng, threads=threads)


@needs_ext
def test_rank2_never_reads_a_stale_slot():
    """Slot 1 of the scratch is left dirty by the previous vector (NaN here); the first stage must
    not read it, so clean vectors after NaN ones come out clean (threads=1: one scratch; the first
    tile, at most 4 vectors, is all NaN, so every later tile reuses dirty slots)."""
    rng = np.random.default_rng(12)
    factors = random_factors(256, rng, False, ("permutation", "rank2"))
    for dtype in ALL_DTYPES:
        plan = kernel.Plan(factors, dtype)
        x = random_input((8, 256), dtype, rng)
        x[:4] = np.nan
        got = plan.apply(x, threads=1)
        assert np.isnan(got[:4]).all()
        assert rel_error(got[4:], plan.factors.apply_reference(x[4:])) <= TOL[np.dtype(dtype).type]


@needs_ext
def test_rank2_threads_and_tiles_do_not_change_the_result():
    """Odd batches split across threads leave partial tiles; every vector must still get the same bits."""
    rng = np.random.default_rng(15)
    factors = random_factors(1024, rng, False, ("permutation", "rank2"))
    for dtype in ALL_DTYPES:
        plan = kernel.Plan(factors, dtype)
        x = random_input((37, 1024), dtype, rng)  # big enough for 3 threads: chunks of 12, 12, 13
        assert kernel._thread_count(3, 37, 1024) == 3
        one = plan.apply(x, threads=1)
        np.testing.assert_array_equal(one, plan.apply(x, threads=3))
        np.testing.assert_array_equal(one[5], plan.apply(x[5:6], threads=1)[0])


@needs_ext
def test_rank2_in_place():
    rng = np.random.default_rng(13)
    factors = random_factors(512, rng, False, ("permutation", "rank2"))
    plan = kernel.Plan(factors, np.float64)
    x = random_input((5, 512), np.float64, rng)
    ref = factors.apply_reference(x)
    assert plan.apply(x, x) is x
    assert rel_error(x, ref) <= 1e-13


def test_complex_rank2_data_falls_back(monkeypatch, capsys):
    """Complex rank2 coefficients are outside the C op's contract: the reference runs them."""
    monkeypatch.setattr(kernel, "_warned", set())
    rng = np.random.default_rng(14)
    stages = random_rank2(32, rng) * np.exp(1j * rng.random((5, 16, 1, 1, 1, 1)))
    factors = Factors(32, [Step("rank2", stages)])
    assert kernel.unsupported_kinds(factors) == ["rank2"]
    x = random_input((2, 32), np.float32, rng)
    np.testing.assert_allclose(kernel.apply(factors, x), factors.apply_reference(x), rtol=1e-12, atol=1e-12)
    assert capsys.readouterr().err.count("no op for step kind 'rank2'") == 1


def test_fallback_without_extension(monkeypatch, capsys):
    """No compiled module: same results through the reference, one line on stderr, once."""
    monkeypatch.setattr(kernel, "_ext", None)
    monkeypatch.setattr(kernel, "_warned", set())
    assert not kernel.available()
    rng = np.random.default_rng(9)
    factors = random_factors(64, rng, True)
    x = random_input((3, 64), np.float32, rng)
    np.testing.assert_array_equal(kernel.apply(factors, x), factors.apply_reference(x))
    plan = kernel.Plan(factors, np.complex64)
    assert not plan.compiled
    assert plan.stage_kinds == ["reference"]
    out = plan.apply(x.astype(np.complex64), np.empty((3, 64), plan.out_dtype))
    assert out.dtype == plan.out_dtype
    assert capsys.readouterr().err.count("compiled kernel not built") == 1


def test_unsupported_step_kind_falls_back_once(monkeypatch, capsys):
    """A step kind this build has no C op for runs on the reference with one note, never raises."""
    monkeypatch.delitem(kernel._OP_BUILDERS, "rank2")
    monkeypatch.setattr(kernel, "_warned", set())
    rng = np.random.default_rng(11)
    factors = random_factors(64, rng, False, ("permutation", "rank2"))
    assert kernel.unsupported_kinds(factors) == ["rank2"]
    for dtype in (np.float32, np.complex128):
        x = random_input((3, 64), dtype, rng)
        got = kernel.apply(factors, x)
        ref = factors.apply_reference(x)
        assert got.dtype == ref.dtype
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
        assert not kernel.Plan(factors, dtype).compiled
    err = capsys.readouterr().err
    assert err.count("no op for step kind 'rank2'") == 1


def test_result_dtype_follows_numpy_promotion():
    rng = np.random.default_rng(10)
    factors = random_factors(8, rng, True)  # ends with "real"
    assert kernel.result_dtype(factors, np.float32) == factors.apply_reference(np.zeros(8, np.float32)).dtype == np.float64
    single = kernel.cast_factors(factors, np.float32)
    assert kernel.Plan(single, np.float32).out_dtype == np.float32
    assert kernel.Plan(random_factors(8, rng, True, ("butterfly",)), np.float32).out_dtype == np.complex64


# ---- FFT-form stages (#15 item 1): specialized at plan time, checked against the reference ----

def fft_chain(n: int, rng: np.random.Generator | None = None) -> Factors:
    """The radix-2 DIT FFT as [bit reversal, butterfly] built from its formula (not by bfly):
    stage s has blocks [[1, w], [1, -w]], w = exp(-2 pi i low / 2s). With ``rng``, every stage is
    also scaled, diag(p) block diag(q) with random complex p, q per pair (same product up to the
    scalings, still of FFT form once they are moved between stages)."""
    levels = n.bit_length() - 1
    rev = np.array([int(format(i, f"0{levels}b")[::-1], 2) if levels else 0 for i in range(n)])
    tw = np.empty((levels, n // 2, 2, 2), complex)
    for lev in range(levels):
        s = 1 << lev
        w = np.exp(-2j * np.pi * (np.arange(n // 2) % s) / (2 * s))
        tw[lev] = np.stack([np.stack([np.ones_like(w), w], -1), np.stack([np.ones_like(w), -w], -1)], -2)
        if rng is not None:
            p, q = (rng.uniform(0.5, 2, (2, n // 2, 2)) * np.exp(2j * np.pi * rng.random((2, n // 2, 2))))
            tw[lev] = p[:, :, None] * tw[lev] * q[:, None, :]
    return Factors(n, [Step("permutation", rev), Step("butterfly", tw)])


def butterfly_kinds(plan: kernel.Plan) -> list[str]:
    return [k for k in plan.stage_kinds if not k.startswith("gather") and k != "diagonal"]


def check_special(factors: Factors, dtype, rng: np.random.Generator, batch: int = 3, threads: int = 1) -> kernel.Plan:
    """A specialized plan against the reference on its cast factors, and against the same plan
    with every stage general (the kernel before the specialization)."""
    plan = kernel.Plan(factors, dtype)
    x = random_input((batch, factors.n), dtype, rng)
    got = plan.apply(x, threads=threads)
    assert rel_error(got, plan.factors.apply_reference(x)) <= TOL[np.dtype(dtype).type]
    general = kernel.Plan(factors, dtype, _special=False)
    assert set(butterfly_kinds(general)) <= {"general"}
    assert rel_error(got, general.apply(x)) <= TOL[np.dtype(dtype).type]
    return plan


@needs_ext
@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
@pytest.mark.parametrize("n", [2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096])
def test_closed_form_fft_runs_as_fft_stages(n, dtype):
    rng = np.random.default_rng(400 + n)
    factors = fft_chain(n)
    plan = check_special(factors, dtype, rng)
    assert "general" not in plan.stage_kinds and "diagonal" not in plan.stage_kinds
    x = random_input((2, n), dtype, rng)  # and the DFT itself, by numpy's own road
    assert rel_error(plan.apply(x), np.fft.fft(x.astype(np.complex128))) <= 10 * TOL[np.dtype(dtype).type]
    if n >= 64:  # stages run fused: radix-4, or radix-8 once the DIT chain's addsub stage shares the fft form
        assert any(k.startswith(("radix4", "radix8")) for k in plan.stage_kinds)


@needs_ext
@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("n", [2, 8, 32, 128, 512, 2048])
def test_scaled_fft_stages_move_their_diagonals(n, dtype):
    """Each block scaled on both sides: still FFT stages, the scalings folded into the neighbours
    and at most one leftover diagonal op."""
    rng = np.random.default_rng(500 + n)
    plan = check_special(fft_chain(n, rng), dtype, rng)
    assert "general" not in plan.stage_kinds
    assert plan.stage_kinds.count("diagonal") <= 1


@needs_ext
@pytest.mark.parametrize("name,n", [("dft", 16), ("dft", 256), ("hadamard", 64), ("hadamard", 1024)])
def test_learned_dft_and_hadamard_are_specialized(name, n):
    import bfly_cli

    factors = bfly_cli.learn(name, n=n)
    rng = np.random.default_rng(600 + n)
    for dtype in ALL_DTYPES:
        plan = check_special(factors, dtype, rng)
        kinds = butterfly_kinds(plan)
        assert "general" not in kinds and "diagonal" not in plan.stage_kinds, kinds
        if name == "hadamard":  # real +-1 blocks: additions only, one scaled stage
            plain = {k.replace("radix4 ", "").replace("radix8 ", "").replace(" +unview", "") for k in kinds}
            assert plain <= {"addsub", "fft-real+scale"}, kinds


@needs_ext
@pytest.mark.parametrize("n", [4, 64, 1024])
def test_general_butterflies_are_not_specialized(n):
    rng = np.random.default_rng(700 + n)
    for complex_ in (False, True):
        factors = random_factors(n, rng, complex_, ("permutation", "butterfly"))
        for dtype in ALL_DTYPES:
            plan = check_special(factors, dtype, rng)
            assert set(butterfly_kinds(plan)) == {"general"}


@needs_ext
@pytest.mark.parametrize("n", [16, 256, 4096])
def test_only_the_stages_that_qualify_are_specialized(n):
    """FFT stages with random general stages in between: each stage gets its own op, the carry
    folded into the general stage that follows."""
    rng = np.random.default_rng(800 + n)
    factors = fft_chain(n, rng)
    tw = factors.steps[1].data.copy()
    general_levels = [1, tw.shape[0] - 2]
    tw[general_levels] = random_twiddles(n, rng, True)[general_levels]
    factors = Factors(n, [factors.steps[0], Step("butterfly", tw)])
    for dtype in ALL_DTYPES:
        plan = check_special(factors, dtype, rng)
        assert butterfly_kinds(plan).count("general") == 2
        assert any(k.startswith(("fft", "addsub", "radix4")) for k in plan.stage_kinds)


@needs_ext
def test_a_near_fft_block_stays_general_in_double():
    """One pair off the FFT form by 1e-9 (relative): far above double rounding, so that stage
    must stay general in a float64 plan (the plan never changes the product beyond rounding);
    far below single rounding, where the FFT form is the same matrix."""
    rng = np.random.default_rng(9)
    factors = fft_chain(256)
    tw = factors.steps[1].data.copy()
    tw[3, 5, 1, 1] *= 1 + 1e-9
    factors = Factors(256, [factors.steps[0], Step("butterfly", tw)])
    plan = check_special(factors, np.complex128, rng)
    assert butterfly_kinds(plan).count("general") == 1
    assert "general" not in check_special(factors, np.complex64, rng).stage_kinds


@needs_ext
@pytest.mark.parametrize("batch", [1, 2, 5, 64, 257])
def test_fft_stages_give_the_same_bits_for_any_thread_count(batch):
    rng = np.random.default_rng(1000 + batch)
    for n, dtype in ((1024, np.complex64), (64, np.complex128), (4096, np.complex64), (32, np.float32)):
        factors = fft_chain(n, rng) if np.dtype(dtype).kind == "c" else Factors(n, [Step("butterfly", random_hadamard(n, rng))])
        plan = kernel.Plan(factors, dtype)
        assert "general" not in plan.stage_kinds
        x = random_input((batch, n), dtype, rng)
        one = np.empty_like(x, dtype=plan.out_dtype)
        plan._core.run(x, one, 1)
        for threads in (2, 3, 2, 1):
            got = np.full_like(one, np.nan)
            plan._core.run(x, got, threads)
            np.testing.assert_array_equal(got, one)


def random_hadamard(n: int, rng: np.random.Generator) -> np.ndarray:
    """Real butterfly of Hadamard form with random positive scalings: diag(p) [[1, 1], [1, -1]] diag(q)."""
    levels = n.bit_length() - 1
    h = np.array([[1.0, 1.0], [1.0, -1.0]])
    p, q = rng.uniform(0.5, 2, (2, levels, n // 2, 2))
    return p[..., :, None] * h * q[..., None, :]


@needs_ext
@pytest.mark.parametrize("n", [2, 16, 64, 512])
def test_real_hadamard_form_runs_without_complex_twiddles(n):
    rng = np.random.default_rng(1100 + n)
    factors = Factors(n, [Step("permutation", rng.permutation(n)), Step("butterfly", random_hadamard(n, rng))])
    for dtype in ALL_DTYPES:
        plan = check_special(factors, dtype, rng)
        kinds = {k.replace("radix4 ", "").replace("radix8 ", "").replace(" +unview", "") for k in butterfly_kinds(plan)}
        assert kinds <= {"addsub", "fft-real", "fft-real+scale"}, kinds


@needs_ext
def test_extension_rejects_bad_fft_ops():
    ext = kernel._ext
    with pytest.raises(ValueError, match="flags"):  # a real plan cannot take complex twiddles
        ext.Plan(4, False, True, [(kernel._OP_FFT, 1, 0, 0, 1, np.zeros(4), 0)])
    with pytest.raises(ValueError, match="flags"):  # w = 1 has no planes to scale
        ext.Plan(4, True, True, [(kernel._OP_FFT, 1, 0, 0, 1, np.zeros(2), 2 | 4)])
    with pytest.raises(ValueError, match="bytes"):
        ext.Plan(4, True, True, [(kernel._OP_FFT, 1, 0, 0, 1, np.zeros(3), 0)])
    with pytest.raises(ValueError, match="radix-4"):
        ext.Plan(64, True, True, [(kernel._OP_FFT2, 4, 0, 0, 8, np.zeros(128), 0)])
    with pytest.raises(ValueError, match="flags"):  # radix-4 passes are never scaled
        ext.Plan(64, True, True, [(kernel._OP_FFT2, 8, 0, 0, 8, np.zeros(192), 4)])
    with pytest.raises(ValueError, match="unview"):
        ext.Plan(64, True, True, [(kernel._OP_UNVIEW, 0, 4, 16, 0, None, 0)])


@needs_ext
@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_unview_is_the_transpose(dtype):
    """Leaving the (8, N/8) view with register transposes moves every element where the gather did."""
    n = 128
    x = random_input((3, n), dtype, np.random.default_rng(3))
    plan = kernel._ext.Plan(n, np.dtype(dtype).kind == "c", np.dtype(dtype) in (np.float64, np.complex128),
                            [(kernel._OP_UNVIEW, 0, 8, n // 8, 0, None, 0)])
    out = np.empty_like(x)
    plan.run(x, out, 1)
    np.testing.assert_array_equal(out, x.reshape(3, 8, n // 8).transpose(0, 2, 1).reshape(3, n))
