"""Torch in one call (#14 item 7): a factor file or Factors as a trainable nn.Linear-shaped layer,
and the way back (modules_to_steps -> Factors -> save -> a file load, show and verify accept).

Targets are built with scipy (not bfly's transforms) and learned in-process; the layer is compared
with those dense matrices, with the numpy reference multiply and with x @ M.T + b."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft as sf
import scipy.linalg as sl
import torch
import torch.nn.functional as F

import bfly_cli
from bfly_cli import metadata
from bfly_cli.factors import Factors, Step
from bfly_cli.torch_butterfly import Butterfly, from_file, modules_to_steps
from bfly_cli.torch_linear import ButterflyLinear, LayerError

N = 16
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")


def _targets() -> dict[str, np.ndarray]:
    eye = np.eye(N)
    return {"dft": sf.fft(eye, axis=0, norm="ortho"), "dct": sf.dct(eye, axis=0, norm="ortho"),
            "convolution": sl.circulant(np.random.default_rng(3).standard_normal(N))}


@pytest.fixture(scope="module")
def learned(tmp_path_factory) -> dict[str, tuple]:
    """name -> (dense target, factor file, its matrix file): learned files, as bfly learn writes them."""
    folder = tmp_path_factory.mktemp("one_call")
    out = {}
    for name, matrix in _targets().items():
        np.save(folder / f"{name}.npy", matrix)
        target = bfly_cli.resolve(str(folder / f"{name}.npy"))
        meta = {"transform": "file", "source": target.source, "source_sha256": target.sha256}
        bfly_cli.save(bfly_cli.factorize(matrix, meta=meta), folder / f"{name}.h5")
        out[name] = (matrix, folder / f"{name}.h5", folder / f"{name}.npy")
    return out


def _x(shape: tuple[int, ...], seed: int = 0, complex_: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    return x + 1j * rng.standard_normal(shape) if complex_ else x


@pytest.mark.parametrize("name", ["dft", "dct", "convolution"])
def test_from_file_is_the_dense_matrix(learned, name):
    matrix, path, _ = learned[name]
    layer = from_file(path)
    assert isinstance(layer, torch.nn.Module) and layer.in_features == layer.out_features == N
    for complex_ in (False, True):
        x = _x((2, 5, N), complex_=complex_)
        y = layer(torch.as_tensor(x)).detach().numpy()
        np.testing.assert_allclose(y, x @ matrix.T, rtol=0, atol=1e-12)
    same = bfly_cli.load(path).to_torch()
    x = torch.as_tensor(_x((3, N), seed=1))
    torch.testing.assert_close(same(x), layer(x), rtol=0, atol=0)


def test_gradients_reach_every_parameter(learned):
    layer = from_file(learned["convolution"][1], bias=True)
    loss = layer(torch.as_tensor(_x((4, N)))).pow(2).sum()
    loss.backward()
    params = list(layer.parameters())
    assert len(params) == 3  # two butterflies and the bias
    assert all(p.grad is not None and torch.count_nonzero(p.grad) > 0 for p in params)


def test_linear_wrapper_with_bias_is_x_mt_plus_b():
    layer = ButterflyLinear(N, N, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert layer.bias is not None and layer.bias.shape == (N,) and torch.count_nonzero(layer.bias) == N
    dense = Factors(N, modules_to_steps(layer.layers)).to_dense()  # the numpy reference's matrix
    x = _x((2, 3, N), seed=2)
    y = layer(torch.as_tensor(x)).detach().numpy()
    np.testing.assert_allclose(y, x @ dense.T + layer.bias.detach().numpy(), rtol=0, atol=1e-12)
    xt = torch.as_tensor(x)
    torch.testing.assert_close(F.linear(xt, layer.weight, layer.bias), layer(xt))
    assert ButterflyLinear(N, bias=False).bias is None


def test_fresh_layer_structure_and_bad_arguments():
    layer = ButterflyLinear(N, bias=False, structure="BPBP", dtype=torch.float64)
    assert Factors(N, modules_to_steps(layer)).structure == "BPBP"
    for bad in (dict(in_features=N, out_features=2 * N), dict(in_features=12), dict(in_features=N, structure="BX"),
                dict(in_features=N, dtype=torch.float16)):
        with pytest.raises(LayerError) as info:
            ButterflyLinear(**bad)
        assert "\n" not in str(info.value) and isinstance(info.value, ValueError)
    with pytest.raises(LayerError, match="last axis"):
        layer(torch.zeros(2, N + 1, dtype=torch.float64))


def test_dtype_kwargs(learned):
    x = _x((3, N), seed=4)
    dft = from_file(learned["dft"][1], dtype=torch.complex64)
    assert dft.layers[1].twiddle.dtype == torch.float32  # complex twiddles held as a float32 pair
    y = dft(torch.as_tensor(x, dtype=torch.float32))
    assert y.dtype == torch.complex64
    np.testing.assert_allclose(y.detach().numpy(), x @ learned["dft"][0].T, rtol=0, atol=1e-5)
    conv = from_file(learned["convolution"][1], dtype=torch.float32, bias=True)  # complex stays complex
    assert conv(torch.as_tensor(x, dtype=torch.float32)).dtype == torch.float32 and conv.bias.dtype == torch.float32
    dct = bfly_cli.load(learned["dct"][1]).to_torch(dtype=torch.complex128, bias=True)  # rank2 stays real
    assert dct(torch.as_tensor(x)).dtype == torch.float64
    fresh = ButterflyLinear(N, dtype=torch.complex128)
    assert fresh(torch.as_tensor(x)).dtype == torch.complex128 and fresh.bias.dtype == torch.complex128
    assert ButterflyLinear(N, device="cpu")(torch.zeros(N)).device.type == "cpu"


@CUDA
def test_cuda_device(learned):
    matrix, path, _ = learned["dft"]
    layer = from_file(path, device="cuda", bias=True)
    x = _x((5, N), seed=5)
    y = layer(torch.as_tensor(x, device="cuda"))
    assert y.device.type == "cuda"
    np.testing.assert_allclose(y.detach().cpu().numpy(), x @ matrix.T, rtol=0, atol=1e-12)
    y.abs().sum().backward()
    assert layer.bias.grad is not None


def _train(layer: ButterflyLinear, steps: int = 5) -> None:
    """A few Adam steps towards a random linear map (the layer must change)."""
    rng = np.random.default_rng(6)
    x, goal = torch.as_tensor(rng.standard_normal((32, N))), torch.as_tensor(rng.standard_normal((32, N)))
    opt = torch.optim.Adam(layer.parameters(), lr=0.05)
    for _ in range(steps):
        opt.zero_grad()
        (layer(x) - goal).abs().pow(2).mean().backward()
        opt.step()


def test_train_save_load_apply_show(learned, tmp_path, bfly):
    matrix, path, _ = learned["convolution"]
    layer = from_file(path)
    _train(layer)
    x = _x((4, N), seed=7)
    y = layer(torch.as_tensor(x)).detach().numpy()
    assert np.abs(y - x @ matrix.T).max() > 1e-3  # training changed it
    factors = layer.to_factors()
    assert factors.meta["transform"] == "custom" and np.isnan(factors.meta["rel_error"])  # unknown, not the file's
    bfly_cli.save(factors, tmp_path / "trained.h5")
    loaded = bfly_cli.load(tmp_path / "trained.h5")
    assert loaded.structure == "RBPBP" and loaded.meta["solver"] == "torch"
    np.testing.assert_allclose(loaded.apply_reference(x), y, rtol=0, atol=1e-12)
    shown = bfly("show", tmp_path / "trained.h5")
    assert shown.exit_code == 0 and "not measured" in shown.stdout
    verify = bfly("verify", tmp_path / "trained.h5")
    assert verify.exit_code == 2 and "no target to rebuild" in verify.stderr and len(verify.stderr.splitlines()) == 1


def test_trained_factors_measured_against_their_source_verify(learned, tmp_path, bfly):
    matrix, path, npy = learned["dft"]
    layer = from_file(path)
    _train(layer, steps=2)
    factors = layer.to_factors(target="source")
    dense = layer.weight.detach().numpy()
    expected = np.linalg.norm(dense - matrix) / np.linalg.norm(matrix)
    assert factors.meta["rel_error"] == pytest.approx(expected, rel=1e-9) and factors.meta["exactness"] == "approximate"
    bfly_cli.save(factors, tmp_path / "tuned.h5")
    result = bfly("verify", tmp_path / "tuned.h5")
    assert result.exit_code == 0, result.stderr
    again = layer.to_factors(target=bfly_cli.resolve(str(npy)))  # a target given, same provenance
    assert again.meta["source_sha256"] == factors.meta["source_sha256"]


def test_bias_is_not_silently_dropped(learned):
    layer = from_file(learned["dft"][1], bias=True)
    assert layer.to_factors().structure == "BP"  # a zero bias loses nothing
    with torch.no_grad():
        layer.bias += 1
    with pytest.raises(LayerError, match="bias"):
        layer.to_factors()
    assert layer.to_factors(drop_bias=True).structure == "BP"
    with pytest.raises(LayerError, match="not loaded"):
        ButterflyLinear(N).to_factors(target="source")


def test_modules_to_steps_takes_layers_and_modules():
    steps = modules_to_steps(Butterfly(N, dtype=torch.float64))
    assert [s.kind for s in steps] == ["butterfly"]
    with pytest.raises(ValueError, match="Linear"):
        modules_to_steps(torch.nn.Linear(N, N))


def test_completed_metadata_makes_hand_built_factors_loadable(tmp_path):
    perm = np.random.default_rng(8).permutation(N)
    factors = Factors(N, [Step("permutation", perm)], metadata.completed({"transform": None}))
    bfly_cli.save(factors, tmp_path / "perm.h5")
    loaded = bfly_cli.load(tmp_path / "perm.h5")
    assert loaded.meta["transform"] == "custom" and np.isnan(loaded.meta["rmse"])
    assert set(metadata.REQUIRED) <= set(loaded.meta)
