"""Shared fixtures: a CLI runner with separate streams and small oracles; the measured slow list."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
from typer.testing import CliRunner

from bfly_cli.cli import app
from bfly_cli.factors import Factors, Step, butterfly_multiply
from bfly_cli.layout import bit_reversal


class Bfly:
    """Run ``bfly`` in-process and return the click Result (exit_code, stdout, stderr)."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: str, input: bytes | str | None = None):
        return self.runner.invoke(app, [str(a) for a in args], input=input, catch_exceptions=False)


@pytest.fixture
def bfly() -> Bfly:
    return Bfly()


def random_butterfly(n: int, rng: np.random.Generator, complex_: bool = True) -> np.ndarray:
    """Dense matrix of a butterfly with random (real or complex) twiddles: an independent oracle."""
    levels = n.bit_length() - 1
    tw = rng.standard_normal((levels, n // 2, 2, 2))
    if complex_:
        tw = tw + 1j * rng.standard_normal((levels, n // 2, 2, 2))
    return butterfly_multiply(tw, np.eye(n)).T



def dense_butterfly(n: int, rng: np.random.Generator, real: bool = False) -> np.ndarray:
    """A dense random butterfly multiplied out stage by stage from explicit 2x2 blocks, with no
    code under test (``random_butterfly`` above goes through the reference multiply)."""
    out = np.eye(n, dtype=float if real else complex)
    for lev in range(n.bit_length() - 1):
        stride = 1 << lev
        stage = np.zeros_like(out)
        for i in range(n // 2):
            low = i % stride
            pos = 2 * (i - low) + low
            block = rng.standard_normal((2, 2))
            if not real:
                block = block + 1j * rng.standard_normal((2, 2))
            stage[np.ix_([pos, pos + stride], [pos, pos + stride])] = block
        out = stage @ out
    return out


def haar(n: int) -> np.ndarray:
    """The orthonormal Haar matrix in pywt's coefficient order: the mean, then details coarsest first."""
    rows = [np.ones(n) / np.sqrt(n)]
    for lev in range(n.bit_length() - 1, 0, -1):
        w = 1 << lev
        for k in range(n // w):
            row = np.zeros(n)
            row[k * w:k * w + w // 2] = 1.0
            row[k * w + w // 2:(k + 1) * w] = -1.0
            rows.append(row / np.sqrt(w))
    return np.array(rows)


def add_noise(a: np.ndarray, eps: float, rng: np.random.Generator) -> np.ndarray:
    """``a + E`` with ``||E||_F = eps ||a||_F``, Gaussian (complex for a complex ``a``)."""
    noise = rng.standard_normal(a.shape)
    if np.iscomplexobj(a):
        noise = noise + 1j * rng.standard_normal(a.shape)
    return a + eps * np.linalg.norm(a) * noise / np.linalg.norm(noise)


def dense_error(steps, a: np.ndarray) -> float:
    """Relative Frobenius error of the steps' dense product against ``a``."""
    dense = Factors(a.shape[0], steps).apply_reference(np.eye(a.shape[0])).T
    return float(np.linalg.norm(dense - a) / np.linalg.norm(a))

def gradient_restart(matrix: np.ndarray, model: str = "BP", seed: int = 0, **options):
    """A :class:`~bfly_cli.solvers.gradient.restart.Restart` on ``matrix`` with an *untrained*
    chain (random logits, as after zero Adam steps), for testing one route of the learner alone."""
    import torch

    from bfly_cli.solvers.gradient.options import GradientOptions
    from bfly_cli.solvers.gradient.restart import Restart
    from bfly_cli.torch_butterfly import ButterflyChain

    target = torch.as_tensor(np.ascontiguousarray(matrix.T))
    target = target.to(torch.complex128 if target.is_complex() else torch.float64)
    chain = ButterflyChain(matrix.shape[0], model, complex=True, real_output=not target.is_complex(),
                           dtype=torch.float32, generator=torch.Generator().manual_seed(seed))
    opts = GradientOptions(model=model, seed=seed, **options)
    return Restart(chain, target, opts, seed, lambda phase, step, loss: None)


def _measured_slow() -> set[str]:
    """Node ids listed in tests/slow_tests.txt (measured over 0.2 s each; see that file)."""
    listing = pathlib.Path(__file__).with_name("slow_tests.txt")
    return {line.strip() for line in listing.read_text().splitlines() if line.strip() and not line.startswith("#")}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the measured-slow tests ``slow`` (besides those marked in their own files)."""
    slow = _measured_slow()
    for item in items:
        if item.nodeid in slow:
            item.add_marker(pytest.mark.slow)


def dit_dft(n: int) -> Factors:
    """Unitary DFT as bit reversal then radix-2 DIT stages, ``w = exp(-i pi low / s)`` (the
    Cooley-Tukey formula, built here rather than by ``bfly_cli.transforms``: a kernel oracle)."""
    levels = n.bit_length() - 1
    tw = np.empty((levels, n // 2, 2, 2), np.complex128)
    for lev in range(levels):
        s = 1 << lev
        w = np.exp(-1j * np.pi * (np.arange(n // 2) % s) / s)
        tw[lev, :, 0, 0], tw[lev, :, 0, 1], tw[lev, :, 1, 0], tw[lev, :, 1, 1] = 1, w, 1, -w
    tw[-1] /= np.sqrt(n)
    return Factors(n, [Step("permutation", bit_reversal(n)), Step("butterfly", tw)])


def fft_form_chain(n: int, rng: np.random.Generator, kinds: list[str], perm: np.ndarray,
                   diagonal: bool = False) -> Factors:
    """``perm``, then a butterfly of ``[[1, w], [1, -w]]`` blocks whose ``w`` is, per level (stride 1
    first), random complex, random real or all one (``kinds``: "complex", "real", "unit"), then
    optionally a random complex diagonal: kernel inputs whose only oracle is the numpy reference.
    Real-only kinds give float64 twiddles (a real plan)."""
    complex_ = "complex" in kinds
    tw = np.empty((len(kinds), n // 2, 2, 2), np.complex128 if complex_ else np.float64)
    for lev, kind in enumerate(kinds):
        w = {"complex": lambda: np.exp(2j * np.pi * rng.random(n // 2)) * (0.5 + rng.random(n // 2)),
             "real": lambda: 0.5 + rng.random(n // 2), "unit": lambda: np.ones(n // 2)}[kind]()
        tw[lev, :, 0, 0], tw[lev, :, 0, 1], tw[lev, :, 1, 0], tw[lev, :, 1, 1] = 1, w, 1, -w
    steps = [Step("permutation", np.asarray(perm)), Step("butterfly", tw)]
    if diagonal:
        steps.append(Step("diagonal", rng.standard_normal(n) + 1j * rng.standard_normal(n)))
    return Factors(n, steps)


def random_input(shape: tuple, dtype, rng: np.random.Generator) -> np.ndarray:
    """Gaussian input of ``shape`` in ``dtype`` (complex parts for a complex dtype)."""
    x = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        x = x + 1j * rng.standard_normal(shape)
    return x.astype(dtype)


def max_rel_error(a: np.ndarray, b: np.ndarray) -> float:
    """``max |a - b| / max |b|``."""
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))
