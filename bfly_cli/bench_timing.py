"""How ``bfly bench`` (and ``benchmarks/bench_kernel.py``) time calls, and when a figure is not believable.

A median alone hides what a shared machine does to a measurement: on a busy 2-core machine, a
multithreaded dense GEMM at batch 16 took ~2,000 µs per vector against 0.35 µs with one thread,
and the old table printed a 6,000x ratio as fact. So every figure here carries its spread (the
minimum and the interquartile range of the samples), and two tests decide whether it is shown as
a number or flagged *unstable*:

* ``SPREAD_LIMIT``: IQR / median above 0.5. Steady timings on an idle machine stay well under
  0.1; a half-median spread means the samples disagree about the cost itself.
* ``GROWTH_LIMIT``: the per-vector cost growing more than 3x from one batch size to the next.
  Batching amortizes per-call overhead, so per-vector cost should fall or stay flat; a 3x rise
  is threads fighting for cores (or a working set falling out of cache), not the method's cost.

Methods are timed *interleaved*: each round samples every method once, in a rotated order, so
the ratios compare samples taken under the same machine load. Each sample is one
``timeit.Timer.timeit`` call (garbage collection off) of enough calls to last ``MEASURE_SECONDS``.
"""

from __future__ import annotations

import time
import timeit
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

SPREAD_LIMIT = 0.5
GROWTH_LIMIT = 3.0
MEASURE_SECONDS = 0.001  # one sample groups calls until about this long (timer overhead vanishes)
WARMUP_SECONDS = 0.02
MAX_CALLS_PER_SAMPLE = 100_000

Timed = Callable[[], Any]


def _noop() -> None:
    return None


@dataclass
class Method:
    """A way of computing ``y = M x``: ``prepare(x)`` returns a zero-argument call to time.

    Splitting preparation from the timed call keeps conversions (numpy -> torch, host -> GPU) and
    plan building (FFTW_MEASURE, the kernel's Plan) out of the measurement; ``result(x)`` gives
    the output as numpy for the agreement check. ``library`` names what does the work (the fast
    baseline's table line says FFTW or scipy.fft), ``threads`` how many threads it really uses
    (a numpy loop uses one whatever ``--threads`` says, and the document must say so).
    """

    key: str
    label: str
    prepare: Callable[[np.ndarray], Timed] | None
    reason: str | None = None  # why the method is unavailable (prepare is None)
    to_numpy: Callable[[Any], np.ndarray] = np.asarray
    library: str | None = None
    threads: int | None = None

    @property
    def available(self) -> bool:
        return self.prepare is not None

    def result(self, x: np.ndarray) -> np.ndarray:
        return self.to_numpy(self.prepare(x)())


@dataclass(frozen=True)
class Spread:
    """Summary of one method's samples, in the caller's unit (µs per vector in the bench)."""

    median: float
    min: float
    q1: float
    q3: float
    samples: int

    @property
    def iqr(self) -> float:
        return self.q3 - self.q1

    @property
    def relative_iqr(self) -> float:
        return self.iqr / self.median if self.median > 0 else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {"median": self.median, "min": self.min, "q1": self.q1, "q3": self.q3,
                "iqr": self.iqr, "samples": self.samples}


def summarize(samples: list[float], scale: float = 1.0) -> Spread:
    """Median, minimum and quartiles of ``samples`` times ``scale`` (quartiles by linear
    interpolation, so a single sample has zero spread rather than none)."""
    values = np.asarray(samples, dtype=float) * scale
    q1, median, q3 = (float(v) for v in np.percentile(values, [25, 50, 75]))
    return Spread(median=median, min=float(values.min()), q1=q1, q3=q3, samples=len(samples))


def spread_reason(spread: Spread) -> str | None:
    """Why the samples are too scattered to quote, or None."""
    if spread.relative_iqr > SPREAD_LIMIT:
        return f"IQR {spread.relative_iqr:.0%} of the median (limit {SPREAD_LIMIT:.0%})"
    return None


def growth_reason(previous_batch: int, previous: float, batch: int, current: float) -> str | None:
    """Why a per-vector cost that grew from one batch size to the next is suspect, or None."""
    if previous > 0 and current > GROWTH_LIMIT * previous:
        return (f"per-vector cost {current / previous:.1f}x that at batch {previous_batch} "
                f"(limit {GROWTH_LIMIT:g}x: threads contending or cache spill)")
    return None


def calls_per_sample(call: Timed, sync: Callable[[], None] = _noop) -> int:
    """Warm the call up, then pick how many calls make one sample last about ``MEASURE_SECONDS``.

    ``timeit.Timer.autorange`` does the same doubling but aims at 0.2 s per sample, too long to
    take many interleaved rounds of several methods; this aims at a few milliseconds.
    """
    calls, start = 0, time.perf_counter()
    while calls < 2 or (time.perf_counter() - start < WARMUP_SECONDS and calls < 1000):
        call()
        calls += 1
    sync()
    per_call = max((time.perf_counter() - start) / calls, 1e-9)
    return int(min(MAX_CALLS_PER_SAMPLE, max(1, MEASURE_SECONDS / per_call)))


def _sampler(call: Timed, number: int, sync: Callable[[], None]) -> Callable[[], float]:
    """One sample: seconds per call over ``number`` calls, ``sync`` counted (asynchronous GPU work)."""
    if sync is _noop:
        timer = timeit.Timer(call)
        return lambda: timer.timeit(number) / number

    def run() -> None:
        for _ in range(number):
            call()
        sync()

    timer = timeit.Timer(run)
    return lambda: timer.timeit(1) / number


def interleaved_samples(calls: dict[str, Timed], repeat: int,
                        sync: Callable[[], None] = _noop) -> dict[str, list[float]]:
    """Seconds per call of every call, ``repeat`` rounds; each round samples every call once, the
    starting call rotating from round to round so no method always runs right after another."""
    samplers = {key: _sampler(call, calls_per_sample(call, sync), sync) for key, call in calls.items()}
    keys = list(samplers)
    samples: dict[str, list[float]] = {key: [] for key in keys}
    for round_index in range(repeat):
        shift = round_index % len(keys) if keys else 0
        for key in keys[shift:] + keys[:shift]:
            samples[key].append(samplers[key]())
    return samples
