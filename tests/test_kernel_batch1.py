"""The compiled one-call path of ``Plan.apply`` (``Plan._call``, C ``call``) and the batch-1 code.

``Plan.apply(x)`` with no ``out`` and no ``threads`` on a C-contiguous ``in_dtype`` input of a
small batch runs entirely in C; anything else returns NotImplemented there and takes the general
path (``Plan._apply``). These tests check that both paths give the same bits, that the answers
match the numpy reference and ``np.fft.fft`` (factors built here from the Cooley-Tukey formula and
from random FFT-form blocks, not by ``bfly_cli.transforms``), and that every input the fast path
must refuse still gets the general path's conversion or error.
"""

from __future__ import annotations

import numpy as np
import pytest

from bfly_cli import kernel
from bfly_cli.factors import Factors, Step

from conftest import dit_dft, fft_form_chain, max_rel_error, random_input

needs_ext = pytest.mark.skipif(not kernel.available(), reason="compiled kernel not built")
DTYPES = [np.float32, np.float64, np.complex64, np.complex128]
TOL = {np.float32: 2e-6, np.complex64: 2e-6, np.float64: 1e-14, np.complex128: 1e-14}


def shuffled_fft_form(n: int, rng: np.random.Generator) -> Factors:
    """A random permutation (the irregular gather a learned DFT has), then [[1, w], [1, -w]]
    blocks with random complex w, then a diagonal: a chain whose only oracle is the reference."""
    return fft_form_chain(n, rng, ["complex"] * (n.bit_length() - 1), rng.permutation(n), diagonal=True)


@needs_ext
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [8, 64, 256, 1024, 4096])
def test_one_call_path_matches_general_path_reference_and_fft(n, dtype):
    plan = kernel.Plan(dit_dft(n), dtype)
    rng = np.random.default_rng(n)
    for shape in [(n,), (1, n), (3, n), (5, n), (3, 1, n)]:
        x = random_input(shape, dtype, rng)
        fast = plan._call(x)
        if x.size // n >= plan._threaded_batch:  # large enough for threads: the general path's
            assert fast is NotImplemented
            fast = plan.apply(x)
        assert fast is not NotImplemented, shape  # the case the path exists for
        assert fast.shape == x.shape and fast.dtype == plan.out_dtype and fast.flags.c_contiguous
        np.testing.assert_array_equal(fast, plan._apply(x, None, None))  # same bits as the general path
        np.testing.assert_array_equal(plan.apply(x), fast)
        assert max_rel_error(fast, plan.factors.apply_reference(x)) <= TOL[dtype]
        assert max_rel_error(fast, np.fft.fft(x, norm="ortho")) <= 10 * TOL[dtype]


@needs_ext
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [16, 256, 2048])
def test_irregular_gather_and_diagonal_match_reference(n, dtype):
    plan = kernel.Plan(shuffled_fft_form(n, np.random.default_rng(n)), dtype)
    rng = np.random.default_rng(n + 1)
    for batch in (1, 3, 7):
        x = random_input((batch, n), dtype, rng)
        got = plan.apply(x[0] if batch == 1 else x)
        want = plan.factors.apply_reference(x[0] if batch == 1 else x)
        assert max_rel_error(got, want) <= 10 * TOL[dtype]
        np.testing.assert_array_equal(plan.apply(x, threads=2)[0], got if batch == 1 else got[0])


@needs_ext
def test_inputs_the_fast_path_refuses_take_the_general_path():
    n = 64
    plan = kernel.Plan(dit_dft(n), np.complex64)
    rng = np.random.default_rng(0)
    x = random_input((4, n), np.complex64, rng)
    want = plan.apply(x)
    strided = np.repeat(x, 2, axis=0)[::2]  # not contiguous
    assert plan._call(strided) is NotImplemented
    np.testing.assert_array_equal(plan.apply(strided), want)
    wider = x.astype(np.complex128)  # another dtype: converted by the general path
    assert plan._call(wider) is NotImplemented
    np.testing.assert_array_equal(plan.apply(wider), want)
    assert plan._call(x.tolist()) is NotImplemented  # not a buffer
    np.testing.assert_array_equal(plan.apply(x.tolist()), want)
    swapped = x.astype(x.dtype.newbyteorder())  # same values, other byte order
    assert plan._call(swapped) is NotImplemented
    np.testing.assert_array_equal(plan.apply(swapped), want)
    big = random_input((plan._threaded_batch, n), np.complex64, rng)  # large enough for threads
    assert plan._call(big) is NotImplemented
    np.testing.assert_array_equal(plan.apply(big), plan.apply(big, threads=1))
    assert plan._call(np.zeros((0, n), np.complex64)) is NotImplemented
    assert plan.apply(np.zeros((0, n), np.complex64)).shape == (0, n)


@needs_ext
def test_fast_path_errors_are_the_general_paths():
    plan = kernel.Plan(dit_dft(32), np.complex64)
    for bad in (np.zeros(16, np.complex64), np.complex64(1)):
        assert plan._call(bad) is NotImplemented
        with pytest.raises(ValueError, match="last axis of length 32"):
            plan.apply(bad)
    with pytest.raises(ValueError, match="threads must be >= 1"):
        plan.apply(np.zeros((4096, 32), np.complex64), threads=0)


@needs_ext
def test_real_input_to_complex_plan_and_real_output():
    n = 128
    rng = np.random.default_rng(3)
    plan = kernel.Plan(dit_dft(n), np.float32)  # real input, complex factors: complex64 out
    x = random_input((3, n), np.float32, rng)
    fast = plan._call(x)
    assert fast is not NotImplemented and fast.dtype == np.complex64
    assert max_rel_error(fast, np.fft.fft(x, norm="ortho")) <= 20 * TOL[np.float32]
    assert plan._call(x.astype(np.complex64)) is NotImplemented  # complex into a real-input plan
    f = dit_dft(n)
    real_out = Factors(n, f.steps + [Step("real", None)])
    plan = kernel.Plan(real_out, np.float64)  # complex factors, real input, real output
    z = random_input((3, n), np.float64, rng)
    y = plan._call(z)
    assert y is not NotImplemented and y.dtype == np.float64
    np.testing.assert_array_equal(y, plan._apply(z, None, None))
    assert max_rel_error(y, np.fft.fft(z, norm="ortho").real) <= 10 * TOL[np.float64]


@needs_ext
def test_set_fast_refuses_what_it_cannot_serve():
    plan = kernel.Plan(dit_dft(16), np.complex64)
    core = plan._core
    general = kernel.Plan._apply
    with pytest.raises(TypeError, match="numpy dtypes"):
        core.set_fast(np.complex64, np.dtype(np.complex64), 4, plan, general)  # a type, not a dtype
    with pytest.raises(TypeError, match="callable"):
        core.set_fast(np.dtype(np.complex64), np.dtype(np.complex64), 4, plan, None)
    with pytest.raises(ValueError, match="precision"):
        core.set_fast(np.dtype(np.complex128), np.dtype(np.complex64), 4, plan, general)
    real_core = kernel._ext.Plan(16, False, False, [])
    with pytest.raises(ValueError, match="complex input or output needs a complex plan"):
        real_core.set_fast(np.dtype(np.complex64), np.dtype(np.float32), 4, None, general)
    assert real_core.call(np.zeros(16, np.float32)) is NotImplemented  # not set up: no fast path
    with pytest.raises(RuntimeError, match="set_fast"):
        real_core.apply(np.zeros(16, np.float32), out=np.zeros(16, np.float32))
    real_core.set_fast(np.dtype(np.float32), np.dtype(np.float32), 4, None, general)
    x = np.arange(16, dtype=np.float32)
    np.testing.assert_array_equal(real_core.call(x), x)  # no ops: the identity
    assert real_core.call(x.astype(np.float64)) is NotImplemented  # not the input type set up


@needs_ext
@pytest.mark.parametrize("dtype", DTYPES)
def test_cached_paths_use_the_same_answer_and_keep_their_errors(dtype):
    n = 256
    f = dit_dft(n)
    rng = np.random.default_rng(5)
    for shape in [(n,), (3, n)]:
        x = random_input(shape, dtype, rng)
        want = kernel.plan_for_dtype(f, x.dtype)._apply(x, None, None)  # the general path, numpy's precision
        np.testing.assert_array_equal(kernel.apply(f, x), want)
        np.testing.assert_array_equal(f.apply(x), want)
        assert max_rel_error(want, np.fft.fft(x.astype(np.complex128), norm="ortho")) <= 10 * TOL[np.complex128]
    with pytest.raises(ValueError, match="last axis of length 128"):
        kernel.apply(f, np.zeros(128, dtype))
    with pytest.raises(ValueError, match="a scalar"):
        kernel.apply(f, np.asarray(1.0, dtype))


@needs_ext
def test_threads_one_takes_the_one_call_path_and_bad_threads_still_raise(monkeypatch):
    n = 64
    general_calls = []
    real_general = kernel.Plan._apply

    def recording(self, x, out, threads):
        general_calls.append(threads)
        return real_general(self, x, out, threads)

    monkeypatch.setattr(kernel.Plan, "_apply", recording)  # before the plan: its C apply keeps this one
    plan = kernel.Plan(dit_dft(n), np.complex128)
    x = random_input((3, n), np.complex128, np.random.default_rng(9))
    got = plan.apply(x, threads=1)
    assert not general_calls  # threads=1 on a small batch: the C path
    np.testing.assert_array_equal(got, real_general(plan, x, None, 1))
    with pytest.raises(ValueError, match="threads must be >= 1"):
        plan.apply(x, threads=0)
    assert general_calls == [0]  # the general path raised it
    np.testing.assert_array_equal(plan.apply(x, threads=2), got)
    assert general_calls == [0, 2]
