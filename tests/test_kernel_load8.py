"""The radix-8 pass that reads the input itself (LOAD8 + FFT3T) and the member reordering that
makes a learned DFT's permutation fit it (``kernel_stages.canonical_inputs``), plus the C
``apply`` that a compiled Plan installs as its own ``apply``.

The DFT factors here come from ``bfly_cli.factorize`` of ``scipy.linalg.dft`` (the solver picks
its own member order in every group, which is what the reordering must undo); answers are
checked against ``np.fft.fft`` and the numpy reference of the unchanged factors.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft
import scipy.linalg

import bfly_cli
from bfly_cli import kernel
from bfly_cli.factors import Factors, Step
from bfly_cli.kernel_stages import canonical_inputs
from bfly_cli.layout import bit_reversal

from conftest import fft_form_chain, max_rel_error, random_input

needs_ext = pytest.mark.skipif(not kernel.available(), reason="compiled kernel not built")
TOL = {np.float32: 2e-6, np.complex64: 2e-6, np.float64: 1e-14, np.complex128: 1e-14}
FUSED = "gather (in the radix8 load)"


@pytest.fixture(scope="module")
def learned_dft() -> dict[int, Factors]:
    return {n: bfly_cli.factorize(scipy.linalg.dft(n, scale="sqrtn")) for n in (64, 256, 1024)}


def test_reordering_keeps_the_product_and_reaches_bit_reversed_order(learned_dft):
    for n, f in learned_dft.items():
        perm, tw = f.steps[0].data, f.steps[1].data
        new_perm, new_tw = canonical_inputs(perm, tw)
        assert not np.array_equal(new_perm, perm)  # the solver's member order was not canonical
        moved = Factors(n, [Step("permutation", new_perm), Step("butterfly", new_tw), *f.steps[2:]])
        x = random_input((3, n), np.complex128, np.random.default_rng(n))
        assert max_rel_error(moved.apply_reference(x), f.apply_reference(x)) <= 1e-15
        tops = (new_perm.reshape(-1, 8) - new_perm.reshape(-1, 8).min(axis=1, keepdims=True)) // (n // 8)
        assert (tops == [0, 4, 2, 6, 1, 5, 3, 7]).all()


def test_reordering_leaves_other_permutations_alone():
    rng = np.random.default_rng(5)
    n = 256
    perm = rng.permutation(n)
    tw = rng.standard_normal((8, n // 2, 2, 2))
    assert canonical_inputs(perm, tw)[0] is perm


def bit_reversed_fft_form(n: int, rng: np.random.Generator) -> Factors:
    """Bit reversal, then ``[[1, w], [1, -w]]`` blocks with random complex ``w`` at every stage (so
    strides 1, 2, 4 form one radix-8 pass) and a final random diagonal."""
    return fft_form_chain(n, rng, ["complex"] * (n.bit_length() - 1), bit_reversal(n), diagonal=True)


@needs_ext
@pytest.mark.parametrize("dtype", [np.complex64, np.float32, np.complex128, np.float64])
def test_fused_load_matches_fft_and_reference(learned_dft, dtype):
    """Single precision: the learned DFT (its blocks pass the FFT-form test at float32's rounding,
    not at float64's), also against np.fft. Double: a random FFT-form chain after a bit reversal."""
    single = np.dtype(dtype) in (np.complex64, np.float32)
    for n in (256, 1024):
        f = learned_dft[n] if single else bit_reversed_fft_form(n, np.random.default_rng(n))
        plan = kernel.Plan(f, dtype)
        assert plan.stage_kinds[0] == FUSED, plan.stage_kinds
        assert "general" not in plan.stage_kinds
        rng = np.random.default_rng(n)
        for batch in (1, 3, 7, 64):  # partial tiles and the threaded path
            x = random_input((batch, n), dtype, rng)
            got = plan.apply(x, threads=1)
            assert max_rel_error(got, plan.factors.apply_reference(x)) <= 4 * TOL[dtype]
            if single:
                assert max_rel_error(got, np.fft.fft(x, norm="ortho")) <= 20 * TOL[dtype]
            for threads in (2, 3):
                np.testing.assert_array_equal(plan.apply(x, threads=threads), got)


@needs_ext
def test_real_input_runs_through_a_complex_plan_with_the_fused_load(learned_dft):
    f = learned_dft[256]
    plan = kernel.Plan(f, np.complex64)
    x = random_input((5, 256), np.float32, np.random.default_rng(1))
    y = np.empty((5, 256), np.complex64)
    plan._core.run(x, y, 1)  # a real buffer into the complex plan: the fused load's real branch
    assert max_rel_error(y, np.fft.fft(x, norm="ortho")) <= 20 * TOL[np.float32]


@needs_ext
def test_permutations_without_the_shape_keep_the_gather():
    rng = np.random.default_rng(2)
    f = bfly_cli.factorize(scipy.linalg.dft(256, scale="sqrtn"))
    shuffled = Factors(256, [Step("permutation", rng.permutation(256)), *f.steps[1:]])
    plan = kernel.Plan(shuffled, np.complex128)
    assert plan.stage_kinds[0] == "gather"
    x = random_input((3, 256), np.complex128, rng)
    assert max_rel_error(plan.apply(x), shuffled.apply_reference(x)) <= TOL[np.complex128]


@needs_ext
def test_extension_rejects_bad_load8_ops(learned_dft):
    ext = kernel._ext
    n = 256
    ops = kernel.compile_ops(learned_dft[n], True, False)  # single: the learned blocks pass the FFT-form test
    assert ops[0][0] == ext.OP_LOAD8
    ext.Plan(n, True, False, ops)  # as compiled: accepted
    bad = ops[0][5].copy()
    bad[0] = n - 4  # the row's 8 elements would run past the vector
    with pytest.raises(ValueError, match="LOAD8 index out of range"):
        ext.Plan(n, True, False, [(*ops[0][:5], bad, 0), *ops[1:]])
    with pytest.raises(ValueError, match="must be followed by an FFT3T"):
        ext.Plan(n, True, False, [ops[0], *ops[2:]])
    with pytest.raises(ValueError, match="must be the first op"):
        ext.Plan(n, True, False, [ops[1], ops[0], *ops[2:]])


@needs_ext
def test_c_apply_takes_the_python_signature(learned_dft):
    f = learned_dft[64]
    plan = kernel.Plan(f, np.complex128)
    assert "apply" in vars(plan) and not hasattr(plan.apply, "__func__")  # the C one is installed on the instance
    rng = np.random.default_rng(3)
    x = random_input((4, 64), np.complex128, rng)
    want = f.apply_reference(x)
    assert max_rel_error(plan.apply(x), want) <= TOL[np.complex128]
    assert max_rel_error(plan.apply(x=x), want) <= TOL[np.complex128]
    np.testing.assert_array_equal(plan.apply(x, threads=2), plan.apply(x))
    out = np.empty_like(x)
    assert plan.apply(x, out) is out and plan.apply(x, out=out, threads=1) is out
    np.testing.assert_array_equal(out, plan.apply(x))
    np.testing.assert_array_equal(plan.apply(x.tolist()), plan.apply(x))  # the general path converts
    with pytest.raises(TypeError, match="positional"):
        plan.apply(x, out, 1)
    with pytest.raises(TypeError, match="unexpected keyword"):
        plan.apply(x, thread=1)
    with pytest.raises(TypeError, match="missing"):
        plan.apply()
    with pytest.raises(ValueError, match="threads must be >= 1"):
        plan.apply(x, threads=0)
    with pytest.raises(ValueError, match="last axis of length 64"):
        plan.apply(np.zeros(8, np.complex128))


@needs_ext
def test_a_kept_apply_outlives_its_plan_and_plans_are_collected(learned_dft):
    import gc
    import weakref

    f = learned_dft[64]
    apply = kernel.Plan(f, np.complex128).apply  # the Plan itself is dropped here
    x = random_input((3, 64), np.complex128, np.random.default_rng(4))
    strided = np.repeat(x, 2, axis=0)[::2]  # not contiguous: the Python general path
    np.testing.assert_array_equal(apply(strided), apply(x))
    plan = kernel.Plan(f, np.complex128)
    ref = weakref.ref(plan)
    del plan, apply
    gc.collect()
    assert ref() is None  # the Plan <-> core cycle is collected


def fft_form_by_level(n: int, kinds: list[str], rng: np.random.Generator) -> Factors:
    """Bit reversal, then FFT-form stages of the given kinds (stride 1 first): the last stages
    decide how the plan's last pass is built."""
    return fft_form_chain(n, rng, kinds, bit_reversal(n))


@needs_ext
@pytest.mark.parametrize("tail", [("complex", "unit"), ("real", "unit"), ("complex", "real"), ("unit", "complex")])
@pytest.mark.parametrize("dtype", [np.complex64, np.complex128, np.float32, np.float64])
def test_last_two_stages_of_different_forms_run_as_one_radix4_pass_that_stores(tail, dtype):
    n = 256
    rng = np.random.default_rng(len(tail[0]) * 7 + len(tail[1]))
    if np.dtype(dtype).kind == "f" and "complex" in tail:
        dtype = np.complex64 if dtype == np.float32 else np.complex128  # complex factors: complex plan
    f = fft_form_by_level(n, ["complex"] * 6 + list(tail) if np.dtype(dtype).kind == "c" else ["real"] * 6 + list(tail), rng)
    plan = kernel.Plan(f, dtype)
    assert plan.stage_kinds[-1].startswith("radix4"), plan.stage_kinds
    for batch in (1, 5, 64):
        x = random_input((batch, n), dtype, rng)
        got = plan.apply(x, threads=1)
        assert max_rel_error(got, f.apply_reference(x)) <= 4 * TOL[np.dtype(dtype).type]
        np.testing.assert_array_equal(plan.apply(x, threads=2), got)


@needs_ext
def test_fused_store_with_real_output_and_real_input():
    """A complex plan whose output is real (a final ``real`` step) keeps the store pass; a real
    input into a complex plan still gets the fused load and store."""
    n = 256
    rng = np.random.default_rng(11)
    f = fft_form_by_level(n, ["complex"] * 8, rng)
    real_out = Factors(n, [*f.steps, Step("real", None)])
    for factors, dtype in ((real_out, np.float64), (f, np.float32), (f, np.float64)):
        plan = kernel.Plan(factors, dtype)
        x = random_input((3, n), dtype, rng)
        got = plan.apply(x)
        assert got.dtype == plan.out_dtype
        assert max_rel_error(got, factors.apply_reference(x)) <= 4 * TOL[np.dtype(dtype).type]


@needs_ext
@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_an_orthonormal_dfts_constant_scale_moves_into_the_first_pass(dtype):
    """The 1/sqrt(N) a learned orthonormal DFT leaves after its stages is one constant, so the plan
    folds it into the first stage (inside the first radix-8 pass) rather than the last, and the
    last two stages of N = 256 (3 + 3 + 2) run as one radix-4 pass instead of two. In complex128
    too: the blocks of a DFT learned from ``scipy.fft.fft`` sit within ``SLACK_DOUBLE`` units of
    the FFT form. (Those learned from ``scipy.linalg.dft``, a matrix itself 1e-14 off the DFT at
    this size, do not, and rightly keep some of that difference as a diagonal or general stage.)"""
    f = bfly_cli.factorize(scipy.fft.fft(np.eye(256), norm="ortho"))
    plan = kernel.Plan(f, dtype)
    kinds = plan.stage_kinds
    assert kinds[1].startswith("radix8") and "+scale" in kinds[1], kinds
    assert kinds[-1] == "radix4 fft" and not any("+scale" in k for k in kinds[2:]), kinds
    rng = np.random.default_rng(256)
    for batch in (1, 7, 64):
        x = random_input((batch, 256), dtype, rng)
        got = plan.apply(x, threads=1)
        assert max_rel_error(got, np.fft.fft(x, norm="ortho")) <= 4 * TOL[np.dtype(dtype).type]
        assert max_rel_error(got, f.apply_reference(x)) <= 4 * TOL[np.dtype(dtype).type]
        np.testing.assert_array_equal(plan.apply(x, threads=2), got)
