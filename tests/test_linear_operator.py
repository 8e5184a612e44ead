"""Factors as a linear operator (#14 items 1-2): ``f @ x``, ``x @ f``, ``.T``, ``.H``, ``inverse()``,
``as_linear_operator()``, and the plan cache behind every fast apply path.

Oracles are built by another road: scipy's DFT, Hadamard and orthonormal DCT matrices, and for
random chains the dense matrix of the numpy reference multiply (``to_dense``) transposed,
conjugated or inverted by numpy.
"""

from __future__ import annotations

import gc
import threading

import numpy as np
import pytest
import scipy.fft
import scipy.linalg
from scipy.sparse.linalg import lsqr

import bfly_cli
from bfly_cli import plan_cache
from bfly_cli.chain_algebra import NotInvertible
from bfly_cli.factors import Factors, Step

N = 32


def targets() -> dict[str, np.ndarray]:
    return {
        "dft": scipy.fft.fft(np.eye(N), axis=0, norm="ortho"),
        "hadamard": scipy.linalg.hadamard(N) / np.sqrt(N),
        "dct": scipy.fft.dct(np.eye(N), axis=0, norm="ortho"),
    }


def random_chain(rng: np.random.Generator, complex_: bool = True) -> Factors:
    levels = N.bit_length() - 1
    tw = rng.standard_normal((levels, N // 2, 2, 2)) + (1j * rng.standard_normal((levels, N // 2, 2, 2)) if complex_ else 0)
    d = rng.uniform(0.5, 2, N) * (np.exp(1j * rng.uniform(0, 6, N)) if complex_ else 1)
    return Factors(N, [Step("permutation", rng.permutation(N)), Step("butterfly", tw), Step("diagonal", d),
                       Step("permutation", rng.permutation(N))])


@pytest.fixture(scope="module")
def learned() -> dict[str, tuple[Factors, np.ndarray]]:
    return {name: (bfly_cli.factorize(a), a) for name, a in targets().items()}


@pytest.mark.parametrize("name", ["dft", "hadamard", "dct"])
def test_matmul_and_adjoint_inverse_of_unitary(learned, name: str) -> None:
    f, a = learned[name]
    rng = np.random.default_rng(1)
    x, xs = rng.standard_normal(N), rng.standard_normal((N, 3))
    assert f.shape == (N, N) and f.ndim == 2
    np.testing.assert_allclose(f @ x, a @ x, atol=1e-13)
    np.testing.assert_allclose(f @ xs, a @ xs, atol=1e-13)
    np.testing.assert_allclose(xs.T @ f, xs.T @ a, atol=1e-13)
    np.testing.assert_allclose(f.H @ (f @ x), x, atol=1e-13)
    np.testing.assert_allclose(f.H @ (f @ xs), xs, atol=1e-13)


def test_matmul_rejects_wrong_shapes(learned) -> None:
    f, _ = learned["dft"]
    for bad in (np.ones(N + 1), np.ones((N + 1, 2)), np.ones((2, 2, N))):
        with pytest.raises(ValueError, match="f @ x needs"):
            f @ bad


@pytest.mark.parametrize("complex_", [True, False])
def test_transpose_adjoint_inverse_match_numpy(complex_: bool) -> None:
    f = random_chain(np.random.default_rng(5), complex_)
    dense = f.to_dense()
    np.testing.assert_allclose(f.T.to_dense(), dense.T, atol=1e-12)
    np.testing.assert_allclose(f.H.to_dense(), dense.conj().T, atol=1e-12)
    np.testing.assert_allclose(f.inverse().to_dense() @ dense, np.eye(N), atol=1e-9)
    assert f.T.meta == {"derived_from": "factors", "derivation": "transpose"}


def test_real_output_chain_keeps_real_last() -> None:
    c = scipy.linalg.circulant(np.random.default_rng(2).standard_normal(N))
    f = bfly_cli.factorize(c)
    assert f.steps[-1].kind == "real"
    for derived in (f.T, f.H):
        assert derived.steps[-1].kind == "real"
        np.testing.assert_allclose(derived.to_dense(), c.T, atol=1e-12)


def test_inverse_refuses_what_has_none(learned) -> None:
    with pytest.raises(NotInvertible, match="rank2"):
        learned["dct"][0].inverse()
    f = random_chain(np.random.default_rng(3))
    f.steps[2].data[4] = 0
    with pytest.raises(NotInvertible, match="zero"):
        f.inverse()
    g = random_chain(np.random.default_rng(4))
    g.steps[1].data[0, 0] = [[1, 2], [2, 4]]
    with pytest.raises(NotInvertible, match="singular"):
        g.inverse()


def test_linear_operator_with_lsqr(learned) -> None:
    f, a = learned["dct"]
    x = np.random.default_rng(9).standard_normal(N)
    op = f.as_linear_operator()
    assert op.shape == (N, N)
    np.testing.assert_allclose(op.rmatvec(x), a.T @ x, atol=1e-13)
    solution = lsqr(op, a @ x, atol=1e-14, btol=1e-14)[0]
    np.testing.assert_allclose(solution, x, atol=1e-10)


def test_plan_cache_builds_once_and_forgets_dead_factors() -> None:
    f = random_chain(np.random.default_rng(6))
    x = np.random.default_rng(7).standard_normal((2, N)) + 0j
    plan = plan_cache.cached_plan(f, np.complex128)
    assert plan_cache.cached_plan(f, np.complex128) is plan
    bfly_cli.apply(f, x)
    before = plan_cache.size()
    for _ in range(5):
        np.testing.assert_allclose(bfly_cli.apply(f, x), f.apply_reference(x), atol=1e-12)
    assert plan_cache.size() == before
    f.steps[2] = Step("diagonal", np.ones(N))  # a replaced step is a new plan, never a stale one
    np.testing.assert_allclose(bfly_cli.apply(f, x), f.apply_reference(x), atol=1e-12)
    del f, plan
    gc.collect()
    assert plan_cache.size() < before + 1


def test_rmatmul_reuses_its_transpose_and_sees_a_replaced_step() -> None:
    """``x @ f`` keeps its transposed chain (a new one per call was a new plan per call: 2.4 ms at
    N = 256), and replacing a step still changes the answer (never a stale transpose)."""
    f = random_chain(np.random.default_rng(8))
    x = np.random.default_rng(9).standard_normal((3, N)) + 0j
    dense = f.to_dense()
    np.testing.assert_allclose(x @ f, x @ dense, atol=1e-12)
    first = f._transpose_for_apply()
    before = plan_cache.size()
    for _ in range(4):
        np.testing.assert_allclose(x @ f, x @ dense, atol=1e-12)
    assert f._transpose_for_apply() is first and plan_cache.size() == before
    f.steps[2] = Step("diagonal", np.full(N, 2.0))
    assert f._transpose_for_apply() is not first
    np.testing.assert_allclose(x @ f, x @ f.to_dense(), atol=1e-12)
    f.steps[1] = Step("butterfly", f.steps[1].data * 0.5)  # a new array in a step: rebuilt too
    np.testing.assert_allclose(x @ f, x @ f.to_dense(), atol=1e-12)


def test_plan_cache_is_thread_safe() -> None:
    chains = [random_chain(np.random.default_rng(s)) for s in range(4)]
    x = np.random.default_rng(8).standard_normal((3, N)) + 0j
    want = [c.apply_reference(x) for c in chains]
    errors: list[float] = []

    def work(k: int) -> None:
        for _ in range(20):
            errors.append(float(np.abs(bfly_cli.apply(chains[k % 4], x) - want[k % 4]).max()))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 160 and max(errors) < 1e-12


def test_derived_and_hand_built_factors_save_to_files_load_accepts(learned, tmp_path, bfly) -> None:
    f, _ = learned["dft"]
    hand = Factors(4, [Step("permutation", np.array([1, 0, 3, 2]))])
    for name, g in (("adjoint", f.H), ("inverse", f.inverse()), ("hand", hand)):
        path = bfly_cli.save(g, tmp_path / f"{name}.h5")
        back = bfly_cli.load(path)
        np.testing.assert_array_equal(back.to_dense(), g.to_dense())
        assert back.meta["transform"] == "custom" and np.isnan(back.meta["rel_error"])  # unknown, not guessed
        assert back.meta.get("derivation") == (None if name == "hand" else name)
        assert bfly("show", str(path)).exit_code == 0
        refused = bfly("verify", str(path))
        assert refused.exit_code == 2 and "no target to rebuild" in refused.output


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64, np.complex128])
def test_apply_is_the_kernel_and_matches_the_reference(dtype) -> None:
    f = random_chain(np.random.default_rng(12))
    x = np.random.default_rng(13).standard_normal((3, N)).astype(dtype)
    got, want = f.apply(x), f.apply_reference(x)
    assert got.dtype == want.dtype
    tol = 1e-4 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-12
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    size = plan_cache.size()
    f.apply(x)
    assert plan_cache.size() == size  # the second call reused the plan
