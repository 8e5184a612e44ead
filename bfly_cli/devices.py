"""Which torch device a command may use: one rule for ``bfly learn --device`` and ``bfly bench --device``.

Kept out of the solvers and the benchmark harness so that both commands accept and reject the
same names with the same one-line messages (they had drifted apart: one took ``cuda:1``, the
other did not). torch is imported only when a GPU is asked for, so checking ``cpu`` stays cheap.
"""

from __future__ import annotations

import re

from .errors import BflyError

_DEVICE = re.compile(r"cpu|cuda(:\d+)?")


def is_cuda(device: str) -> bool:
    """True for ``cuda`` and ``cuda:N`` (a device :func:`check_device` accepted)."""
    return device.startswith("cuda")


def check_device(device: str) -> None:
    """Raise a one-line :class:`BflyError` for an unknown device name or a GPU torch cannot see."""
    if not _DEVICE.fullmatch(device):
        raise BflyError(f"unknown device {device!r}; choose cpu or cuda (cuda:N for one GPU of several)")
    if is_cuda(device):
        import torch

        if not torch.cuda.is_available():
            raise BflyError(f"--device {device}: torch sees no CUDA GPU on this machine; use --device cpu")
