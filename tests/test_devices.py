"""bfly_cli/devices.py: one rule for --device in learn and bench."""

from __future__ import annotations

import pytest
import torch

from bfly_cli.devices import check_device, is_cuda
from bfly_cli.errors import BflyError


@pytest.mark.parametrize("name", ["tpu", "gpu", "cuda:", "cuda:x", "CPU", ""])
def test_unknown_names_are_one_line_errors(name):
    with pytest.raises(BflyError, match="unknown device") as info:
        check_device(name)
    assert "\n" not in str(info.value)


def test_cpu_always_works():
    check_device("cpu")
    assert not is_cuda("cpu") and is_cuda("cuda") and is_cuda("cuda:1")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
@pytest.mark.parametrize("name", ["cuda", "cuda:0"])
def test_cuda_without_a_gpu_says_so(name):
    with pytest.raises(BflyError, match="no CUDA GPU"):
        check_device(name)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_cuda_with_a_gpu_passes():
    check_device("cuda")
    check_device("cuda:0")
