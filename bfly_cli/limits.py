"""The valid range of every numeric command-line value, in one table, checked before any work.

Why a table: a value that parses as a number can still fail far from where it was typed. A seed
of 2**70 is accepted by numpy but cannot be stored in the factor file's int64 attribute, so
``learn`` failed at save time, after the work was done; ``--threads 2**31`` overflowed inside
torch; ``--tol nan`` made every comparison false and so silently disabled the check. Each range
below is what the value is stored in or handed to can take (int64 attributes, C ``int`` thread
counts, ``select`` timeouts), capped where a larger value could only mean a typo. The CLI checks
every option against this table while parsing arguments (:mod:`bfly_cli.commands._options`), and
library entry points that take the same values (the sweep, the bench) check them here too, so the
limits and their messages exist once. Only the standard library is imported: the CLI loads this
module at start-up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import BflyError
from .sizes import MAX_N, check_memory, check_size

MAX_SEED = 2**63 - 1  # the factor file stores the seed as int64; numpy and torch accept it too
MAX_THREADS = 1024  # more than any machine's cores; well inside the kernel's C int and torch's limit


@dataclass(frozen=True)
class Range:
    """A closed range ``low..high``; ``low_open`` excludes ``low`` (a learning rate of 0 is useless).

    ``kind`` is ``int`` or ``float``; float values must also be finite, because NaN compares false
    with every bound (it would pass any range test written as ``x < low``) and infinity turns a
    limit into no limit.
    """

    kind: type
    low: float
    high: float
    meaning: str
    low_open: bool = False

    def text(self) -> str:
        """The range as the docs and the messages write it: ``1..1024``, ``> 0``, ``>= 0``."""
        if math.isinf(self.high):
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        return f"{_num(self.low)}..{_num(self.high)}"


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 2**64 else f"{value:g}"


RANGES: dict[str, Range] = {
    "--n": Range(int, 2, MAX_N, "a power of two; larger matrices do not fit in memory"),
    "--seed": Range(int, 0, MAX_SEED, "the factor file stores the seed as int64"),
    "--budget": Range(int, 1, 8, "butterfly blocks for the approximation"),
    "--type": Range(int, 2, 4, "the DCT/DST types scipy.fft defines that bfly offers"),
    "--restarts": Range(int, 1, 1000, "random restarts of the gradient solver"),
    "--steps": Range(int, 0, 1_000_000, "Adam steps per restart"),
    "--lr": Range(float, 0.0, math.inf, "a learning rate of 0 never moves", low_open=True),
    "--tol": Range(float, 0.0, math.inf, "the largest rel_error that passes"),
    "--threads": Range(int, 1, MAX_THREADS, "threads over the batch"),
    "--repeat": Range(int, 1, 10_000, "timed measurements per method and batch"),
    "--jobs": Range(int, 1, 256, "worker processes"),
    "--timeout": Range(float, 0.0, 1e6, "seconds per cell; 1e6 s is 11.6 days"),
}


def check(flag: str, value: int | float) -> int | float:
    """``value`` if it lies in ``RANGES[flag]``, else a one-line :class:`BflyError` with the range."""
    spec = RANGES[flag]
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if flag == "--n" and number and isinstance(value, int):
        _check_n(value)
    if spec.kind is int:
        ok = number and isinstance(value, int) and spec.low <= value <= spec.high
    else:
        value = float(value) if number else value
        ok = number and math.isfinite(value) and (value > spec.low if spec.low_open else value >= spec.low) and value <= spec.high
    if not ok:
        what = "a whole number" if spec.kind is int else "a finite number"
        shown = f"{value:g}" if isinstance(value, float) else str(value)
        raise BflyError(f"{flag} {shown} is out of range; give {what} {spec.text()} ({spec.meaning})")
    return value


def _check_n(n: int) -> None:
    """Sizes get the messages that name what would work: the nearest powers of two, or the largest
    N that fits in this machine's memory (counted for a real matrix, the smallest working set, so
    nothing that could fit is refused here; the target's own check is exact)."""
    check_size(n, "--n")
    check_memory(n, complex_=False)
