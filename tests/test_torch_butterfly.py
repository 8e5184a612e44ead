"""Torch butterfly modules: against the numpy reference multiply, gradients, conversions, CUDA."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bfly_cli.factors import Factors, Step, butterfly_multiply
from bfly_cli.torch_butterfly import (
    Butterfly,
    ButterflyChain,
    LearnablePermutation,
    bit_reversal,
    butterfly_apply,
    tied_to_untied,
    decreasing_to_increasing,
    increasing_to_decreasing,
    permutation_from_choices,
    soft_permute,
    steps_to_modules,
    modules_to_steps,
)

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _dense_reference(module: Butterfly) -> np.ndarray:
    """Independent dense product of the stage matrices (built entry by entry from the pair rule)."""
    tw = module.untied_twiddles().detach().numpy()
    n, levels = module.n, module.levels
    total = np.eye(n, dtype=tw.dtype)
    for block in range(module.nblocks):
        order = range(levels) if module.increasing_stride else range(levels - 1, -1, -1)
        for lev in order:
            s = 1 << lev
            stage = np.zeros((n, n), dtype=tw.dtype)
            for i in range(n // 2):
                low = i % s
                pos = 2 * (i - low) + low
                idx = [pos, pos + s]
                stage[np.ix_(idx, idx)] = tw[block, lev, i]
            total = stage @ total
    return total


@pytest.mark.parametrize("n", [4, 8, 16])
@pytest.mark.parametrize("complex_", [False, True])
@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("increasing", [True, False])
def test_butterfly_matches_reference_and_factors(n, complex_, tied, increasing):
    module = Butterfly(n, complex=complex_, tied=tied, increasing_stride=increasing, nblocks=2,
                       dtype=torch.float64, generator=_gen(n))
    x = torch.randn(3, n, dtype=torch.float64, generator=_gen(1))
    y = module(x).detach().numpy()
    dense = _dense_reference(module)
    assert np.abs(y - x.numpy() @ dense.T).max() < 1e-12
    factors = Factors(n, module.to_steps())
    assert np.abs(factors.apply_reference(x.numpy()) - y).max() < 1e-12
    if not increasing:
        assert factors.structure == "PBPBP"


def test_tied_has_paper_parameter_count():
    n = 16
    assert Butterfly(n, tied=True).twiddle.numel() == 4 * (n - 1)
    assert Butterfly(n, tied=False).twiddle.numel() == 2 * n * 4
    assert Butterfly(n, tied=True, complex=True).twiddle.numel() == 2 * 4 * (n - 1)


def test_decreasing_conversion_round_trip():
    tw = np.random.default_rng(0).standard_normal((4, 8, 2, 2))
    back = increasing_to_decreasing(decreasing_to_increasing(tw))
    assert np.array_equal(back, tw)
    assert not np.array_equal(decreasing_to_increasing(tw), tw)


def test_all_separate_choices_give_bit_reversal():
    for n in (4, 8, 32):
        levels = n.bit_length() - 1
        choices = np.zeros((levels - 1, 3), dtype=bool)
        choices[:, 0] = True
        assert np.array_equal(permutation_from_choices(n, choices), bit_reversal(n))


@pytest.mark.parametrize("seed", range(4))
def test_soft_permutation_at_saturated_logits_is_the_hard_one(seed):
    n = 16
    perm = LearnablePermutation(n, dtype=torch.float64, generator=_gen(seed))
    with torch.no_grad():
        perm.logit.copy_(perm.logit.sign() * 60)
    x = torch.arange(n, dtype=torch.float64)
    assert np.array_equal(perm(x).detach().numpy().round().astype(int), perm.hard_permutation())
    assert sorted(perm.hard_permutation()) == list(range(n))


def test_soft_permutation_is_doubly_stochastic():
    n = 8
    prob = torch.rand(2, 3, dtype=torch.float64, generator=_gen(3))
    mat = soft_permute(torch.eye(n, dtype=torch.float64), prob)
    assert torch.allclose(mat.sum(0), torch.ones(n, dtype=torch.float64))
    assert torch.allclose(mat.sum(1), torch.ones(n, dtype=torch.float64))


def test_shared_logits_expand_to_every_level():
    perm = LearnablePermutation(16, share_logits=True)
    assert perm.logit.shape == (3,)
    assert perm.probabilities().shape == (3, 3)


@pytest.mark.parametrize("complex_", [False, True])
@pytest.mark.parametrize("tied", [False, True])
def test_gradcheck_butterfly(complex_, tied):
    shape = (3, 2, 2) if tied else (2, 2, 2, 2)
    raw = torch.randn(*shape, *((2,) if complex_ else ()), dtype=torch.float64, generator=_gen(0))
    x = torch.randn(2, 4, dtype=torch.float64, generator=_gen(1), requires_grad=True)

    def fn(tw, inp):
        tw = torch.view_as_complex(tw) if complex_ else tw
        tw = tied_to_untied(tw, 4) if tied else tw
        out = butterfly_apply(tw, inp, increasing_stride=False)
        return torch.view_as_real(out) if out.is_complex() else out

    assert torch.autograd.gradcheck(fn, (raw.requires_grad_(True), x))


def test_gradcheck_soft_permutation():
    prob = torch.rand(2, 3, dtype=torch.float64, generator=_gen(0)).requires_grad_(True)
    x = torch.randn(2, 8, dtype=torch.float64, generator=_gen(1), requires_grad=True)
    assert torch.autograd.gradcheck(soft_permute, (x, prob))


@pytest.mark.parametrize("structure", ["BP", "BPP", "BPBP"])
def test_chain_hard_steps_match_module_with_saturated_permutations(structure):
    n = 8
    chain = ButterflyChain(n, structure, complex=True, real_output=True, dtype=torch.float64, generator=_gen(2))
    for perm in chain.permutations():
        with torch.no_grad():
            perm.logit.copy_(perm.logit.sign() * 60)
    x = torch.randn(3, n, dtype=torch.float64, generator=_gen(4))
    factors = Factors(n, chain.to_steps())
    assert factors.steps[-1].kind == "real"
    assert np.abs(factors.apply_reference(x.numpy()) - chain(x).detach().numpy()).max() < 1e-10


def test_steps_modules_round_trip():
    rng = np.random.default_rng(0)
    steps = [Step("permutation", rng.permutation(8)),
             Step("butterfly", rng.standard_normal((3, 4, 2, 2)) + 1j * rng.standard_normal((3, 4, 2, 2))),
             Step("diagonal", rng.standard_normal(8) + 0j), Step("real")]
    back = modules_to_steps(steps_to_modules(steps))
    x = rng.standard_normal((2, 8))
    assert np.allclose(Factors(8, back).apply_reference(x), Factors(8, steps).apply_reference(x))
    twiddle = steps[1].data
    y = steps_to_modules(steps[1:2])(torch.as_tensor(x)).detach().numpy()
    assert np.allclose(y, butterfly_multiply(twiddle, x))


def test_bad_size_is_reported():
    with pytest.raises(ValueError, match="12"):
        Butterfly(12)


@CUDA
def test_cuda_forward_backward_match_cpu():
    cpu = Butterfly(16, complex=True, dtype=torch.float64, generator=_gen(0))
    gpu = Butterfly.from_twiddles(cpu.untied_twiddles()[0].detach(), device="cuda")
    x = torch.randn(3, 16, dtype=torch.float64, generator=_gen(1))
    a, b = cpu(x), gpu(x.cuda())
    assert torch.allclose(a, b.cpu())
    a.abs().sum().backward()
    b.abs().sum().backward()
    assert torch.allclose(cpu.twiddle.grad[0], gpu.twiddle.grad[0].cpu())


@CUDA
def test_cuda_chain_and_saved_steps_match_cpu():
    """A BPP chain with soft permutations, and a file's steps (rank2 included), agree on CPU and GPU."""
    from bfly_cli.torch_butterfly import steps_to_modules

    torch.manual_seed(0)
    cpu = ButterflyChain(16, "BPP", complex=True, real_output=True, dtype=torch.float64)
    gpu = ButterflyChain(16, "BPP", complex=True, real_output=True, dtype=torch.float64)
    gpu.load_state_dict(cpu.state_dict())
    gpu = gpu.cuda()
    x = torch.randn(5, 16, dtype=torch.float64, generator=_gen(2))
    assert torch.allclose(cpu(x), gpu(x.cuda()).cpu())
    rng = np.random.default_rng(0)
    steps = [Step("permutation", rng.permutation(16)), Step("rank2", rng.standard_normal((4, 8, 2, 2, 2, 2)))]
    a = steps_to_modules(steps)(x)
    b = steps_to_modules(steps, device="cuda")(x.cuda()).cpu()
    assert torch.allclose(a, b)
    assert np.allclose(a.detach().numpy(), Factors(16, steps).apply_reference(x.numpy()))
