"""Size checks made *before* any allocation: power of two, at least 2, fits in memory."""

from __future__ import annotations

import os

from .errors import BflyError

# Dense copies alive at once while learning with the cheapest route: the target and its scaled
# working copy, and the B.P route's blocks (measured: 3.3 complex128 copies for a DFT-4096 through
# ``learn``, the target's own construction 2.6). The routes and solvers past that declare their
# own working memory (``solvers.registry.Memory``), checked before each runs
# (:func:`working_memory_shortfall`): this guard only refuses sizes nothing could learn.
WORKING_COPIES = 4
MAX_N = 1 << 20


def check_size(n: int, label: str | None = None) -> int:
    """Return log2(n), or raise a one-line error saying which sizes work (``label``: the file)."""
    where = f"{label}: " if label else ""
    if n < 2:
        raise BflyError(f"{where}N = {n} is too small; use a power of two >= 2 (2, 4, 8, ..., 1024, ...)")
    if n & (n - 1):
        below, above = 1 << (n.bit_length() - 1), 1 << n.bit_length()
        raise BflyError(f"{where}N = {n} is not a power of two; use a power of two such as {below} or {above}")
    return n.bit_length() - 1


def bytes_needed(n: int, complex_: bool = True) -> int:
    """Estimated peak bytes for learning an n x n matrix (complex128 when ``complex_``)."""
    return WORKING_COPIES * n * n * (16 if complex_ else 8)


def available_bytes() -> int:
    """Memory available to this process now (MemAvailable on Linux, else physical memory)."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 40


def check_memory(n: int, complex_: bool = True) -> None:
    """Refuse, with the figures, a size whose dense working set would not fit in memory."""
    need, have = bytes_needed(n, complex_), available_bytes()
    if n > MAX_N or need > have:
        largest = 2
        while bytes_needed(largest * 2, complex_) <= have and largest * 2 <= MAX_N:
            largest *= 2
        raise BflyError(
            f"N = {n} needs about {_gib(need)} of memory for the dense matrix and solver work space, "
            f"but only {_gib(have)} is available; use N <= {largest}"
        )


def working_memory_shortfall(need: int) -> str | None:
    """None when ``need`` bytes fit in the memory available now, else the reason, with both figures."""
    have = available_bytes()
    if need <= have:
        return None
    return f"needs about {_gib(need)} of working memory beside the matrix, but only {_gib(have)} is available"


def _gib(count: int) -> str:
    return f"{count / 2**30:.1f} GiB"
