"""The step-kind contract, parametrized over every kind in :mod:`bfly_cli.step_kinds`.

A kind that is registered must work everywhere a step goes: the numpy reference and its dtype
promotion, the HDF5 file and every export format (exact round trip), the compiled kernel (or its
declared fallback), the torch multiply and modules, and the h5py-only reader printed in
docs/file-format.md. Adding a kind to the registry without the rest fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from bfly_cli import export as ex
from bfly_cli import h5format, kernel, torch_butterfly, torch_ops
from bfly_cli.errors import BflyError, FormatError
from bfly_cli.factors import Factors, Step
from bfly_cli.step_kinds import KINDS, StepKind, UnknownStepKind, kind_of

N = 16
DOC = Path(__file__).resolve().parents[1] / "docs" / "file-format.md"
META = {"transform": "randn", "transform_options": {}, "solver": "test", "rmse": 0.0, "rel_error": 0.0,
        "max_abs_error": 0.0, "seconds": 0.0, "seed": 0, "bfly_version": "test", "created": "now", "command": "test"}


def _cases() -> list[tuple[str, str]]:
    """(kind, data dtype): index kinds int64, kinds without data once, number kinds real and complex."""
    cases = []
    for name, kind in KINDS.items():
        if not kind.has_data:
            cases.append((name, "none"))
        elif kind.indices:
            cases.append((name, "int64"))
        else:
            cases += [(name, "float64"), (name, "complex128")]
    return cases


CASES = _cases()
IDS = [f"{k}-{d}" for k, d in CASES]


def _data(kind: StepKind, dtype: str, rng: np.random.Generator) -> np.ndarray | None:
    """Random data of the registered shape (a random permutation for index data)."""
    shape = kind.shape(N)
    if shape is None:
        return None
    if kind.indices:
        return rng.permutation(N).astype(dtype)
    values = rng.standard_normal(shape) * 0.7
    if dtype.startswith("complex"):
        values = values + 0.7j * rng.standard_normal(shape)
    return values.astype(dtype)


def _factors(name: str, dtype: str, seed: int = 0) -> Factors:
    """The kind under test between a permutation and a complex butterfly (which gives a kind
    without data, ``real``, a complex vector to act on)."""
    rng = np.random.default_rng(seed)
    levels = N.bit_length() - 1
    tw = (rng.standard_normal((levels, N // 2, 2, 2)) + 1j * rng.standard_normal((levels, N // 2, 2, 2))) * 0.7
    steps = [Step("permutation", rng.permutation(N)), Step("butterfly", tw), Step(name, _data(KINDS[name], dtype, rng))]
    return Factors(N, steps, dict(META))


def _inputs(rng: np.random.Generator) -> list[np.ndarray]:
    real = rng.standard_normal((3, N))
    return [real, real.astype(np.float32), real + 1j * rng.standard_normal((3, N))]


def _same_steps(a: Factors, b: Factors) -> None:
    assert [s.kind for s in a.steps] == [s.kind for s in b.steps]
    for x, y in zip(a.steps, b.steps):
        assert (x.data is None) == (y.data is None)
        if x.data is not None:
            assert x.data.dtype == y.data.dtype and x.data.shape == y.data.shape
            assert np.array_equal(x.data, y.data)


# ---- the registry entry itself --------------------------------------------------------------


@pytest.mark.parametrize("name", list(KINDS))
def test_entry_is_consistent(name):
    kind = kind_of(name)
    assert kind.name == name and re.fullmatch(r"[A-Z]", kind.letter)
    assert [k.letter for k in KINDS.values()].count(kind.letter) == 1
    shape = kind.shape(N)
    assert shape is None or shape[0] in (N, N.bit_length() - 1)
    if not kind.has_data or kind.indices:
        assert kind.n_params(_data(kind, "int64", np.random.default_rng(0))) == 0


def _documented_kinds() -> list[str]:
    """Kinds in the table of docs/file-format.md's "Steps" section."""
    section = DOC.read_text().split("## Steps", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `(\w+)` \|", section, re.M)


def test_every_kind_is_documented():
    assert sorted(_documented_kinds()) == sorted(KINDS)


# ---- reference multiply and dtype promotion -------------------------------------------------


@pytest.mark.parametrize("name, dtype", CASES, ids=IDS)
def test_reference_and_promotion(name, dtype):
    factors = _factors(name, dtype)
    kind = kind_of(name)
    for x in _inputs(np.random.default_rng(1)):
        if factors.real_linear and np.iscomplexobj(x):
            x = x.real  # complex input runs as its two real parts (tests/test_honest_answers.py)
        before = factors.steps[0:2]
        mid = Factors(N, before).apply_reference(x)
        out = kind.multiply(factors.steps[2].data, mid)
        np.testing.assert_array_equal(out, factors.apply_reference(x))
        step_dtype = None if factors.steps[2].data is None else factors.steps[2].data.dtype
        assert out.dtype == kind.result_dtype(mid.dtype, step_dtype) == kernel.result_dtype(factors, x.dtype)


# ---- file and export formats ----------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["h5", *ex.FORMATS])
@pytest.mark.parametrize("name, dtype", CASES, ids=IDS)
def test_formats_round_trip_exactly(tmp_path, name, dtype, fmt):
    factors = h5format.load(h5format.save(_factors(name, dtype), tmp_path / "f.h5"))
    if fmt == "h5":
        back = factors
    elif fmt == "pt" and name not in torch_butterfly.STEP_MODULES:
        pytest.fail(f"step kind {name!r} has no torch module (torch_butterfly.STEP_MODULES)")
    elif fmt == "pt" and _torch_refuses(factors):
        with pytest.raises(BflyError, match="pt export"):
            ex.export(factors, tmp_path / "f.pt", "pt")
        return
    else:
        back = ex.load_export(ex.export(factors, tmp_path / f"f.{fmt}", fmt))
    _same_steps(factors, back)
    assert back.structure == factors.structure


def _torch_refuses(factors: Factors) -> bool:
    """Data a torch module declines: complex rank2 stages (the Rank2 module is real, like the spec)."""
    return any(s.kind == "rank2" and np.iscomplexobj(s.data) for s in factors.steps)


# ---- the compiled kernel --------------------------------------------------------------------


@pytest.mark.parametrize("name, dtype", CASES, ids=IDS)
def test_kernel_agrees_or_falls_back_as_declared(name, dtype):
    factors = _factors(name, dtype)
    declared = name in kernel.compiled_kinds() and not (name in kernel.unsupported_kinds(factors))
    if not declared:
        assert name in kernel.unsupported_kinds(factors)
    for x in _inputs(np.random.default_rng(2)):
        ref = factors.apply_reference(x)
        got = kernel.apply(factors, x)
        assert got.dtype == ref.dtype
        tol = 1e-4 if np.finfo(ref.dtype).bits <= 32 else 1e-12
        np.testing.assert_allclose(got, ref, rtol=tol, atol=tol)
        if kernel.available():
            in_dtype = np.result_type(x.dtype, np.float32)
            assert kernel.Plan(factors, in_dtype).compiled == declared


# ---- torch ----------------------------------------------------------------------------------


DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU"))]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name, dtype", CASES, ids=IDS)
def test_torch_multiply_agrees(name, dtype, device):
    factors = _factors(name, dtype)
    steps = torch_ops.factors_to_torch(factors, device)
    for x in _inputs(np.random.default_rng(3)):
        got = torch_ops.apply_steps_torch(steps, torch.as_tensor(x, device=device)).cpu().numpy()
        np.testing.assert_allclose(got, factors.apply_reference(x), rtol=1e-5, atol=1e-5 if x.dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name, dtype", CASES, ids=IDS)
def test_torch_modules_agree_and_convert_back(name, dtype, device):
    factors = _factors(name, dtype)
    if _torch_refuses(factors):
        with pytest.raises(ValueError):
            torch_butterfly.steps_to_modules(factors.steps, device)
        return
    module = torch_butterfly.steps_to_modules(factors.steps, device)
    x = np.random.default_rng(4).standard_normal((3, N)) + 0j
    with torch.no_grad():
        got = module(torch.as_tensor(x, device=device)).cpu().numpy()
    np.testing.assert_allclose(got, factors.apply_reference(x), atol=1e-12)
    _same_steps(factors, Factors(N, torch_butterfly.modules_to_steps(module)))


# ---- the h5py-only reader of docs/file-format.md --------------------------------------------


def _doc_reader():
    """The reader printed in docs/file-format.md ("Reading a file with h5py and numpy only"), as written."""
    section = DOC.read_text().split("## Reading a file with h5py and numpy only", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace: dict = {}
    exec(code, namespace)
    return namespace["apply_file"]


@pytest.mark.parametrize("name, dtype", CASES, ids=IDS)
def test_doc_reader_agrees(tmp_path, name, dtype):
    factors = _factors(name, dtype)
    path = h5format.save(factors, tmp_path / "f.h5")
    for x in _inputs(np.random.default_rng(5)):
        np.testing.assert_allclose(_doc_reader()(str(path), x), factors.apply_reference(x), rtol=1e-6, atol=1e-12)


# ---- unknown kinds are refused everywhere, never guessed ------------------------------------


def _unchecked(steps: list[Step]) -> Factors:
    """Factors that skipped validation, as a buggy caller could build them."""
    factors = object.__new__(Factors)
    factors.n, factors.steps, factors.meta = N, steps, {}
    return factors


def test_unknown_kind_is_refused_everywhere(tmp_path):
    bogus = Step("bogus", np.ones(N))
    with pytest.raises(UnknownStepKind, match="unknown step kind 'bogus'"):
        kind_of("bogus")
    with pytest.raises(FormatError, match="unknown kind 'bogus'"):
        Factors(N, [bogus])
    with pytest.raises(UnknownStepKind):
        bogus.n_params()
    with pytest.raises(UnknownStepKind):
        kernel.result_dtype(_unchecked([bogus]), np.float64)
    with pytest.raises(ValueError):
        torch_butterfly.steps_to_modules([bogus])
    with pytest.raises(ValueError):
        torch_ops.apply_steps_torch([("bogus", torch.ones(N))], torch.ones(N))
    with pytest.raises(ValueError, match="not a bfly step module"):
        torch_butterfly.modules_to_steps(torch.nn.Sequential(torch.nn.Identity()))
    np.savez(tmp_path / "b.npz", step0_bogus=np.ones(N), meta=np.array('{"n": 16}'))
    with pytest.raises(FormatError, match="unknown kind 'bogus'"):
        ex.load_export(tmp_path / "b.npz")
