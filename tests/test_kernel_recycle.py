"""A plan reuses its last large result once the caller has dropped it (``Plan._new_output``).

The reuse must never be visible: a result the caller still holds, a view of it or anything sharing
its memory stays untouched by later calls. ``RECYCLE_BYTES`` is lowered so small arrays take the
large-result path; the factors are scipy's DFT learned by ``factorize``, checked against np.fft.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft

import bfly_cli
from bfly_cli import kernel

needs_ext = pytest.mark.skipif(not kernel.available(), reason="compiled kernel not built")
N = 64


@pytest.fixture
def plan(monkeypatch: pytest.MonkeyPatch) -> kernel.Plan:
    monkeypatch.setattr(kernel, "RECYCLE_BYTES", (0, 1 << 30))
    return kernel.Plan(bfly_cli.factorize(scipy.fft.fft(np.eye(N), norm="ortho")), np.complex128)


def _batch(seed: int, batch: int = 300) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch, N)) + 1j * rng.standard_normal((batch, N))


@needs_ext
def test_a_dropped_result_is_reused_and_correct(plan) -> None:
    first = plan.apply(_batch(0), threads=2)
    address = first.ctypes.data
    del first
    x = _batch(1)
    again = plan.apply(x, threads=2)
    assert again.ctypes.data == address  # the same memory, not fresh pages
    np.testing.assert_allclose(again, np.fft.fft(x, norm="ortho"), atol=1e-13)


@needs_ext
@pytest.mark.parametrize("holder", ["array", "view", "memoryview", "list"])
def test_a_result_still_held_is_never_overwritten(plan, holder: str) -> None:
    x0 = _batch(2)
    first = plan.apply(x0, threads=2)
    want = np.fft.fft(x0, norm="ortho")
    kept = {"array": lambda: first, "view": lambda: first[3:5], "memoryview": lambda: memoryview(first),
            "list": lambda: [first]}[holder]()
    del first
    for seed in (3, 4):
        y = plan.apply(_batch(seed), threads=2)
        np.testing.assert_allclose(y, np.fft.fft(_batch(seed), norm="ortho"), atol=1e-13)
    held = {"array": lambda: kept, "view": lambda: kept.base, "memoryview": lambda: np.asarray(kept),
            "list": lambda: kept[0]}[holder]()
    np.testing.assert_allclose(held, want, atol=1e-13)  # untouched by both later calls


@needs_ext
def test_a_result_of_another_shape_is_not_reused(plan) -> None:
    first = plan.apply(_batch(5, batch=300), threads=2)
    address = first.ctypes.data
    del first
    x = _batch(6, batch=200)
    y = plan.apply(x, threads=2)
    assert y.shape == (200, N) and y.ctypes.data != address
    np.testing.assert_allclose(y, np.fft.fft(x, norm="ortho"), atol=1e-13)


@needs_ext
def test_outputs_below_the_threshold_are_not_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kernel, "RECYCLE_BYTES", (1 << 40, 1 << 41))
    plan = kernel.Plan(bfly_cli.factorize(scipy.fft.fft(np.eye(N), norm="ortho")), np.complex128)
    plan.apply(_batch(7), threads=2)
    assert plan._spare == []
