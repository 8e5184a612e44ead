"""The unit form of rank2 stages (bfly_cli.kernel_rank2) and the kernel's MIXED rank2 ops.

Targets come by another road than ``transforms/``: scipy's DCT-II and DST-II and a Hartley matrix
from ``np.fft``, learned by ``factorize``; and random rank2 steps. The plan is checked against
scipy itself and against ``rank2_multiply`` of the stored (unspecialized) step.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft

from bfly_cli import factorize, kernel
from bfly_cli.factors import Factors, Step, rank2_multiply
from bfly_cli.kernel_rank2 import COND, unit_form

needs_ext = pytest.mark.skipif(not kernel.available(), reason="compiled kernel not built")
TOL = {np.float32: 2e-6, np.float64: 1e-13}


def _hartley(n: int) -> np.ndarray:
    f = np.fft.fft(np.eye(n), axis=0, norm="ortho")
    return f.real - f.imag


TARGETS = {
    "dct": lambda n: scipy.fft.dct(np.eye(n), axis=0, norm="ortho"),
    "dst": lambda n: scipy.fft.dst(np.eye(n), axis=0, norm="ortho"),
    "hartley": _hartley,
}
_LEARNED: dict[tuple[str, int], Factors] = {}


def learned(name: str, n: int) -> Factors:
    """``factorize`` of the target, once per test session (the DCT-1024 takes about a second)."""
    if (name, n) not in _LEARNED:
        factors = factorize(TARGETS[name](n))
        assert [s.kind for s in factors.steps] == ["permutation", "rank2"]
        _LEARNED[name, n] = factors
    return _LEARNED[name, n]


def kernel_orders(n: int, levels: int) -> list[np.ndarray]:
    return [kernel._rank2_order(n // 2, 1 << lev, 8, n // 8) for lev in range(levels)]


def random_stages(n: int, rng: np.random.Generator) -> np.ndarray:
    """Random rank2 stages whose P and R quarters are near the identity (so the unit form applies)."""
    levels = n.bit_length() - 1
    stages = rng.standard_normal((levels, n // 2, 2, 2, 2, 2)) / 2
    for o in (0, 1):
        stages[:, :, o, :, 0, :] = np.eye(2) + 0.1 * rng.standard_normal((levels, n // 2, 2, 2))
    return stages


@pytest.mark.parametrize("name", sorted(TARGETS))
@pytest.mark.parametrize("n", [64, 256, 1024])
def test_unit_form_keeps_the_product(name, n):
    """The walk changes the step, not its product; unit pairs have identity P and R blocks."""
    stages = learned(name, n).steps[1].data
    plan = unit_form(stages, kernel_orders(n, stages.shape[0]))
    assert plan is not None
    x = np.random.default_rng(n).standard_normal((3, n))
    want = rank2_multiply(stages, x)
    assert np.linalg.norm(rank2_multiply(plan.stages, x) - want) <= 1e-13 * np.linalg.norm(want)
    for lev, unit in enumerate(plan.unit):
        blocks = plan.stages[lev][unit]
        np.testing.assert_array_equal(blocks[:, 0, :, 0, :], np.broadcast_to(np.eye(2), (len(blocks), 2, 2)))
        np.testing.assert_array_equal(blocks[:, 1, :, 0, :], np.broadcast_to(np.eye(2), (len(blocks), 2, 2)))
    assert not plan.unit[0].any() and not plan.unit[-1].any()  # the 8-plane ends stay as they are
    share = sum(u.sum() for u in plan.unit) / ((n // 2) * (stages.shape[0] - 2))
    assert share >= {64: 0.4, 256: 0.7, 1024: 0.75}[n]  # measured: 0.44-0.75, 0.71-0.79, 0.80-0.91


def test_unit_blocks_are_whole_kernel_blocks():
    """A block of 8 pairs in the kernel's order is unit as a whole or not at all."""
    n = 1024
    stages = learned("dct", n).steps[1].data
    orders = kernel_orders(n, stages.shape[0])
    plan = unit_form(stages, orders)
    mixed = 0
    for lev, unit in enumerate(plan.unit):
        by_block = unit[orders[lev]].reshape(-1, 8)
        assert np.all(by_block.all(axis=1) | ~by_block.any(axis=1))
        mixed += 0 < by_block.all(axis=1).mean() < 1
    assert mixed > 0  # the DCT's real-valued channels leave some blocks general


def test_singular_blocks_stay_general():
    """Pairs whose P or R is singular or badly conditioned keep their block (with the carry)."""
    rng = np.random.default_rng(3)
    n = 64
    stages = random_stages(n, rng)
    stages[2, :8, 0, :, 0, :] = np.array([[1.0, 2.0], [2.0, 4.0]])  # singular P in the first block
    stages[3, 8:16, 1, :, 0, :] = np.array([[1.0, 0.0], [0.0, 1.0 / (10 * COND)]])  # cond above COND
    orders = kernel_orders(n, stages.shape[0])
    plan = unit_form(stages, orders)
    assert plan is not None
    assert not plan.unit[2][orders[2][:8]].any()
    assert not plan.unit[3][orders[3][8:16]].any()
    x = rng.standard_normal((2, n))
    want = rank2_multiply(stages, x)
    assert np.linalg.norm(rank2_multiply(plan.stages, x) - want) <= 1e-12 * np.linalg.norm(want)


def test_no_unit_block_means_no_plan():
    """Every P singular: nothing to gain, so the step runs as stored."""
    n = 64
    stages = random_stages(n, np.random.default_rng(4))
    stages[:, :, 0, :, 0, :] = 0.0
    assert unit_form(stages, kernel_orders(n, stages.shape[0])) is None


@needs_ext
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(TARGETS))
@pytest.mark.parametrize("n", [64, 256, 1024])
def test_learned_real_transforms_run_mixed_stages(name, n, dtype):
    """Against scipy itself and against the reference of the stored step, 1-3 threads."""
    factors = learned(name, n)
    plan = kernel.Plan(factors, dtype)
    assert any(k.startswith("rank2 unit") for k in plan.stage_kinds)
    x = np.random.default_rng(n).standard_normal((37, n)).astype(dtype)
    got = plan.apply(x, threads=1)
    ref = plan.factors.apply_reference(x)
    want = TARGETS[name](n) @ x.astype(np.float64).T
    tol = TOL[np.dtype(dtype).type]
    assert np.linalg.norm(got - ref) <= tol * np.linalg.norm(ref)
    assert np.linalg.norm(got - want.T) <= 4 * tol * np.linalg.norm(want)
    np.testing.assert_array_equal(got, plan.apply(x, threads=3))
    np.testing.assert_array_equal(got[5], plan.apply(x[5:6], threads=1)[0])


@needs_ext
@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_complex_input_through_a_learned_dct(dtype):
    """Real and imaginary parts as two real inputs (``Factors.real_linear``), both through unit blocks."""
    n = 256
    factors = learned("dct", n)
    plan = kernel.Plan(factors, dtype)
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((7, n)) + 1j * rng.standard_normal((7, n))).astype(dtype)
    want = scipy.fft.dct(x, axis=-1, norm="ortho")
    tol = TOL[np.float32 if dtype == np.complex64 else np.float64]
    assert np.linalg.norm(plan.apply(x) - want) <= 4 * tol * np.linalg.norm(want)


@needs_ext
def test_unspecialized_plan_agrees():
    """``_special=False`` keeps every rank2 stage general; both agree to rounding."""
    factors = learned("dct", 512)
    plain = kernel.Plan(factors, np.float64, _special=False)
    assert "rank2 unit" not in " ".join(plain.stage_kinds)
    special = kernel.Plan(factors, np.float64)
    x = np.random.default_rng(6).standard_normal((4, 512))
    ref = plain.apply(x)
    assert np.linalg.norm(special.apply(x) - ref) <= 1e-13 * np.linalg.norm(ref)


@needs_ext
def test_layout_change_moves_both_slots_by_transposes():
    """The change back to natural order inside the step is an 8x8-transpose op with STATE."""
    factors = learned("dct", 256)
    ops = kernel.compile_ops(kernel.cast_factors(factors, np.float64), False, True)
    state_ops = [op for op in ops if op[0] == kernel._OP_UNVIEW]
    assert len(state_ops) == 1 and state_ops[0][6] == kernel._FLAG_STATE
    assert not any(op[0] == kernel._OP_GATHER and op[6] for op in ops)


@needs_ext
def test_extension_refuses_bad_mixed_ops():
    """MIXED or UNIT with FIRST/LAST, both together, below N = 64, or MIXED without its block flags is refused."""
    from bfly_cli import _kernel

    n = 64
    planes = np.zeros(16 * n // 2, np.float64)
    flags = np.ones(n // 16, np.float64)
    good = (_kernel.OP_R2, 8, 0, 0, 8, np.concatenate([planes, flags]), 4)
    _kernel.Plan(n, False, True, [good])
    with pytest.raises(ValueError, match="flags"):
        _kernel.Plan(n, False, True, [good[:6] + (4 | 1,)])
    with pytest.raises(ValueError, match="bytes"):
        _kernel.Plan(n, False, True, [good[:5] + (planes,) + good[6:]])
    small = (_kernel.OP_R2, 8, 0, 0, 8, np.zeros(16 * 16 + 2), 4)
    with pytest.raises(ValueError, match="flags"):
        _kernel.Plan(32, False, True, [small])
    unit = (_kernel.OP_R2, 8, 0, 0, 8, np.zeros(8 * n // 2), 8)  # UNIT: 8 planes, no block flags
    _kernel.Plan(n, False, True, [unit])
    for flags in (8 | 4, 8 | 2, 8 | 1):
        with pytest.raises(ValueError, match="flags"):
            _kernel.Plan(n, False, True, [unit[:6] + (flags,)])


@needs_ext
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_non_finite_input_floods_its_vector_like_the_reference(dtype):
    """Filled-in columns multiply what the reference multiplies by 0: Inf and NaN still give NaN
    in the same places (the whole vector), and the other vectors are untouched."""
    factors = learned("dct", 256)
    plan = kernel.Plan(factors, dtype)
    x = np.random.default_rng(7).standard_normal((4, 256)).astype(dtype)
    x[1, 7], x[2, 100], x[3, 0] = np.inf, np.nan, -np.inf
    got, ref = plan.apply(x), plan.factors.apply_reference(x)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    assert np.isnan(got[1:]).all() and np.isfinite(got[0]).all()
