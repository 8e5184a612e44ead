"""Radix-8 FFT passes of the compiled kernel (FFT3T: strides 1, 2, 4 and the way out of the
transposed view in one pass; FFT3: three natural-order strides) and the per-call fast paths.

Oracles: :meth:`Factors.apply_reference` (the numpy reference) and ``np.fft.fft``; the FFT-form
butterflies are built here from their formulas (Cooley-Tukey, Hadamard, random ``[[1, w], [1, -w]]``
blocks), not by ``bfly_cli.transforms``.
"""

from __future__ import annotations

import numpy as np
import pytest

from bfly_cli import kernel, plan_cache
from bfly_cli.factors import Factors, Step

from conftest import dit_dft, fft_form_chain, max_rel_error, random_input

needs_ext = pytest.mark.skipif(not kernel.available(), reason="compiled kernel not built")
DTYPES = [np.float32, np.float64, np.complex64, np.complex128]
TOL = {np.float32: 2e-6, np.complex64: 2e-6, np.float64: 1e-14, np.complex128: 1e-14}


def fft_form(n: int, rng: np.random.Generator, kind: str) -> Factors:
    """A random permutation and a butterfly of [[1, w], [1, -w]] blocks: w random complex, random
    real, or all one (Hadamard), so every flag combination of the radix-8 ops runs."""
    return fft_form_chain(n, rng, [kind] * (n.bit_length() - 1), rng.permutation(n))


@needs_ext
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [64, 128, 256, 1024, 4096])
def test_dit_dft_radix8_matches_numpy_fft_and_reference(n, dtype):
    plan = kernel.Plan(dit_dft(n), dtype)
    assert any(k.startswith("radix8") for k in plan.stage_kinds), plan.stage_kinds
    rng = np.random.default_rng(n)
    for batch in (1, 3, 7):
        x = random_input((batch, n), dtype, rng)
        got = plan.apply(x, threads=1)
        assert max_rel_error(got, plan.factors.apply_reference(x)) <= TOL[dtype]
        assert max_rel_error(got, np.fft.fft(x, norm="ortho")) <= 10 * TOL[dtype]
        for threads in (2, 3):
            np.testing.assert_array_equal(plan.apply(x, threads=threads), got)


@needs_ext
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["complex", "real", "unit"])
@pytest.mark.parametrize("n", [64, 512, 2048])
def test_fft_form_radix8_every_flag_matches_reference(n, kind, dtype):
    if kind == "complex" and np.dtype(dtype).kind == "f":
        dtype = np.complex64 if dtype == np.float32 else np.complex128  # complex factors: complex plan
    f = fft_form(n, np.random.default_rng(3 * n), kind)
    plan = kernel.Plan(f, dtype)
    assert sum(k.startswith("radix8") for k in plan.stage_kinds) >= 2, plan.stage_kinds
    rng = np.random.default_rng(n + 1)
    x = random_input((5, n), dtype, rng)
    got = plan.apply(x)
    assert got.dtype == plan.out_dtype
    assert max_rel_error(got, plan.factors.apply_reference(x)) <= 4 * TOL[np.dtype(dtype).type]
    for threads in (1, 2, 3):
        np.testing.assert_array_equal(plan.apply(x, threads=threads), got)


@needs_ext
def test_radix8_ops_only_where_three_stages_agree():
    """A stage that stays general breaks a radix-8 group: the plan falls back to radix-4/2 there
    and still matches the reference."""
    f = dit_dft(1024)
    tw = f.steps[1].data.copy()
    tw[4, 0, 1, 1] += 0.5  # stride 16 is no longer of FFT form
    g = Factors(1024, [f.steps[0], Step("butterfly", tw)])
    plan = kernel.Plan(g, np.complex128)
    assert "general" in plan.stage_kinds
    assert not any(k.startswith("radix8 fft") and "unview" not in k for k in plan.stage_kinds[:3])
    x = random_input((3, 1024), np.complex128, np.random.default_rng(1))
    assert max_rel_error(plan.apply(x), g.apply_reference(x)) <= TOL[np.complex128]


@needs_ext
def test_extension_rejects_bad_radix8_ops():
    ext = kernel._ext
    with pytest.raises(ValueError, match="radix-8 geometry"):
        ext.Plan(64, True, True, [(ext.OP_FFT3T, 1, 4, 16, 8, None, 2)])
    with pytest.raises(ValueError, match="radix-8 geometry"):
        ext.Plan(64, True, True, [(ext.OP_FFT3, 4, 0, 0, 8, None, 2)])
    with pytest.raises(ValueError, match="flags"):
        ext.Plan(64, True, True, [(ext.OP_FFT3, 8, 0, 0, 8, None, 2 | 16)])  # UNIT with a scale
    with pytest.raises(ValueError, match="bytes"):  # complex w: 3 stages x 2 planes x N/2
        ext.Plan(64, True, True, [(ext.OP_FFT3T, 1, 8, 8, 8, np.zeros(6 * 32 - 1), 0)])
    ext.Plan(64, True, True, [(ext.OP_FFT3T, 1, 8, 8, 8, np.zeros(6 * 32 + 32), 16)])


@needs_ext
def test_core_run_arguments_are_checked():
    plan = kernel.Plan(dit_dft(16), np.complex128)
    x = np.zeros((2, 16), np.complex128)
    out = np.empty_like(x)
    with pytest.raises(TypeError):
        plan._core.run(x)
    with pytest.raises(TypeError):
        plan._core.run(x, out, "2")
    with pytest.raises(TypeError, match="element format"):
        plan._core.run(x.astype(np.complex64), out, 1)
    with pytest.raises(ValueError, match="contiguous"):
        plan._core.run(np.zeros((16, 4), np.complex128).T, out[:, :4].T, 1)
    plan._core.run(x, out, 0)  # any thread count below one runs on the caller's thread
    np.testing.assert_array_equal(out, 0)


@needs_ext
def test_plan_apply_fast_path_keeps_the_checks():
    f = dit_dft(32)
    plan = kernel.Plan(f, np.complex64)
    rng = np.random.default_rng(5)
    x = random_input((3, 32), np.complex128, rng)
    want = f.apply_reference(x.astype(np.complex64))
    assert max_rel_error(plan.apply(x), want) <= TOL[np.complex64]  # converted, not misread
    wide = random_input((32, 6), np.complex64, rng)
    assert max_rel_error(plan.apply(wide.T), f.apply_reference(wide.T)) <= TOL[np.complex64]  # not contiguous
    assert max_rel_error(plan.apply(list(x[0].astype(np.complex64))), want[0]) <= 1e-5
    with pytest.raises(ValueError, match="threads"):
        plan.apply(x[0], threads=0)
    with pytest.raises(ValueError, match="last axis"):
        plan.apply(np.zeros(31, np.complex64))
    with pytest.raises(ValueError, match="C-contiguous"):
        plan.apply(x.astype(np.complex64), out=np.empty((3, 32), np.complex128))


def test_threaded_batch_is_where_thread_count_first_exceeds_one():
    for n in (2, 8, 64, 256, 1024, 4096, 1 << 16):
        limit = kernel._threaded_batch(n)
        assert kernel._thread_count(64, limit, n) > 1
        assert kernel._thread_count(64, limit - 1, n) == 1


def test_plan_cache_sees_replaced_data_even_at_a_reused_address():
    """The cache holds the arrays it was built from, so a new array can never be mistaken for the
    old one by its id; replacing a step's data (in place on the Step, too) is a new plan."""
    n = 16
    f = dit_dft(n)
    x = random_input((2, n), np.complex128, np.random.default_rng(2))
    first = f.apply(x)
    plan = plan_cache.plan_for_input(f, x.dtype)
    f.steps[0].data = f.steps[0].data[::-1].copy()  # the Step object is the same
    assert plan_cache.plan_for_input(f, x.dtype) is not plan
    got = f.apply(x)
    np.testing.assert_allclose(got, f.apply_reference(x), atol=1e-13)
    assert not np.allclose(got, first)
    assert plan_cache.plan_for_input(f, x.dtype) is plan_cache.plan_for_input(f, x.dtype)
    f.steps = f.steps[:1]  # fewer steps: a miss too
    np.testing.assert_allclose(f.apply(x), f.apply_reference(x), atol=1e-13)
