"""The target zoo against the paper's formulas, written out independently."""

from __future__ import annotations

import numpy as np
import pytest

from bfly_cli import transforms

N = 16
k = np.arange(N)[:, None]
j = np.arange(N)[None, :]


@pytest.mark.parametrize(
    "name, expected",
    [
        ("dft", np.exp(-2j * np.pi * k * j / N) / np.sqrt(N)),
        ("idft", np.exp(2j * np.pi * k * j / N) / np.sqrt(N)),
        ("dct", 2 * np.cos(np.pi * k * (2 * j + 1) / (2 * N)) / np.sqrt(N)),
        ("dst", 2 * np.sin(np.pi * (k + 1) * (2 * j + 1) / (2 * N)) / np.sqrt(N)),
        ("hartley", (np.cos(2 * np.pi * k * j / N) + np.sin(2 * np.pi * k * j / N)) / np.sqrt(N)),
        ("hadamard", np.array([[(-1) ** bin(a & b).count("1") for b in range(N)] for a in range(N)]) / np.sqrt(N)),
    ],
)
def test_definitions(name: str, expected: np.ndarray) -> None:
    np.testing.assert_allclose(transforms.build(name, N), expected, atol=1e-13)


def test_ortho_variants_are_orthonormal() -> None:
    for name in ("dct", "dst"):
        t = transforms.build(name, N, norm="ortho")
        np.testing.assert_allclose(t @ t.T, np.eye(N), atol=1e-13)


def test_convolution_is_circulant_of_seeded_filter() -> None:
    c = np.random.default_rng(3).standard_normal(N)
    t = transforms.build("convolution", N, seed=3)
    expected = np.array([[c[(a - b) % N] for b in range(N)] for a in range(N)]) / np.sqrt(N)
    np.testing.assert_allclose(t, expected)
    assert not np.allclose(t, transforms.build("convolution", N, seed=4))


def test_convolution_filter_file(tmp_path) -> None:
    c = np.arange(N, dtype=float)
    np.save(tmp_path / "c.npy", c)
    t = transforms.build("convolution", N, filter=str(tmp_path / "c.npy"))
    np.testing.assert_allclose(t[:, 0], c / np.sqrt(N))
    np.save(tmp_path / "bad.npy", np.zeros(N + 1))
    with pytest.raises(transforms.TransformOptionError, match="length 16"):
        transforms.build("convolution", N, filter=str(tmp_path / "bad.npy"))


def test_legendre_rows_are_polynomials() -> None:
    x = np.linspace(-1, 1, N + 2)[1:-1]
    t = transforms.build("legendre", N) * np.sqrt(N)
    for degree in (0, 1, 2, 5, 15):
        coef = np.zeros(degree + 1)
        coef[-1] = 1
        np.testing.assert_allclose(t[degree], np.polynomial.legendre.legval(x, coef), atol=1e-12)


def test_unknown_name_suggests_closest() -> None:
    with pytest.raises(transforms.UnknownTransform, match="did you mean 'hadamard'"):
        transforms.get("hadamrd")


def test_option_not_taken() -> None:
    with pytest.raises(transforms.TransformOptionError, match="does not take --norm"):
        transforms.build("hadamard", N, norm="ortho")
    with pytest.raises(transforms.TransformOptionError, match="use one of backward, ortho, forward, paper"):
        transforms.build("dct", N, norm="unitary")
