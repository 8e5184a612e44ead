"""Timing harness behind ``bfly bench``: learned factors against dense and fast-library baselines.

Everything is timed in one process, on the same input batch, in the same dtype and with the same
thread count, because the only numbers worth reporting are *ratios* measured under identical
conditions. Per (method, batch) we warm up, group enough calls into one measurement that timer
overhead vanishes, repeat, and report the median in microseconds per vector (medians resist the
scheduler noise of a shared machine).

Methods (keys of the result document):

``butterfly``  the compiled kernel (:mod:`bfly_cli.kernel`) or, when it is not built, the numpy
               reference ``Factors.apply_reference`` (the label says which); on ``cuda`` the torch path.
``torch``      :mod:`bfly_cli.torch_ops` (the autograd/CUDA path), CPU only.
``dense``      ``torch`` GEMV (batch 1) / GEMM with the reconstructed matrix ``to_dense()``;
               torch is used because ``torch.set_num_threads`` reliably pins its BLAS threads.
``fast``       the best fast library for the file's recorded transform, if there is one.

The target's identity comes from the file's metadata (``transform``, ``transform_options``). That
is used only to *pick a baseline*; every baseline is checked against the factors' own output and
the difference is reported (``rel_diff``), so a baseline that does not match shows up at once.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np

from . import kernel
from .devices import check_device, is_cuda
from .errors import BflyError
from .factors import Factors

DEFAULT_BATCHES = (1, 16, 256)
DEFAULT_REPEAT = 15
MEASURE_SECONDS = 0.004  # one measurement groups calls until about this long
WARMUP_SECONDS = 0.02
MAX_CALLS_PER_MEASURE = 100_000
MAX_INPUT_BYTES = 1 << 30
MAX_BATCHES = 64  # each batch size is a full round of measurements; more is a typo
MAX_DENSE_BYTES = 2 << 30
METHOD_KEYS = ("butterfly", "torch", "dense", "fast")

Timed = Callable[[], Any]


@dataclass
class Method:
    """A way of computing ``y = M x``: ``prepare(x)`` returns a zero-argument call to time.

    Splitting preparation from the timed call keeps conversions (numpy -> torch, host -> GPU)
    out of the measurement; ``result(x)`` gives the output as numpy for the agreement check.
    """

    key: str
    label: str
    prepare: Callable[[np.ndarray], Timed] | None
    reason: str | None = None  # why the method is unavailable (prepare is None)
    to_numpy: Callable[[Any], np.ndarray] = np.asarray

    @property
    def available(self) -> bool:
        return self.prepare is not None

    def result(self, x: np.ndarray) -> np.ndarray:
        return self.to_numpy(self.prepare(x)())


def parse_batches(text: str) -> list[int]:
    """``"1,16,256"`` -> ``[1, 16, 256]``, with a one-line error for anything else."""
    try:
        batches = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise BflyError(f"--batch {text!r}: give comma-separated positive integers, e.g. --batch 1,16,256") from None
    if not batches or min(batches) < 1:
        raise BflyError(f"--batch {text!r}: give comma-separated positive integers, e.g. --batch 1,16,256")
    if len(batches) > MAX_BATCHES:
        raise BflyError(f"--batch: {len(batches)} batch sizes; give at most {MAX_BATCHES}, e.g. --batch 1,16,256")
    return batches


@contextlib.contextmanager
def thread_limit(threads: int) -> Iterator[None]:
    """Pin torch's (and, when threadpoolctl is installed, numpy's BLAS) threads; restore after."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with _blas_limit(threads):
            yield
    finally:
        torch.set_num_threads(previous)


def _blas_limit(threads: int):
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=threads)


def median_seconds(call: Timed, repeat: int, sync: Callable[[], None] = lambda: None) -> float:
    """Median wall time of one ``call()`` over ``repeat`` measurements, after a warm-up.

    ``sync`` runs at the end of each measurement (``torch.cuda.synchronize`` on a GPU) so that
    asynchronous work is counted without adding a synchronisation to every call.
    """
    calls, start = 0, time.perf_counter()
    while calls < 2 or (time.perf_counter() - start < WARMUP_SECONDS and calls < 1000):
        call()
        calls += 1
    sync()
    per_call = max((time.perf_counter() - start) / calls, 1e-9)
    number = int(min(MAX_CALLS_PER_MEASURE, max(1, MEASURE_SECONDS / per_call)))
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            call()
        sync()
        samples.append((time.perf_counter() - t0) / number)
    return statistics.median(samples)


def fwht(x: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Fast Walsh-Hadamard transform along the last axis (Sylvester order), times ``scale``.

    ``y = scale * H x`` with ``H[i, j] = (-1)^popcount(i & j)``: log2 N passes of sums and
    differences over pairs at stride ``h``, all vectorised over the batch; numpy has no FWHT.
    """
    n = x.shape[-1]
    batch = x.shape[:-1]
    y = np.array(x, dtype=np.result_type(x.dtype, np.float32), order="C", copy=True)
    h = 1
    while h < n:  # in place on views: one temporary per pass instead of three
        v = y.reshape(*batch, n // (2 * h), 2, h)
        a, b = v[..., 0, :], v[..., 1, :]
        diff = a - b
        a += b
        b[...] = diff
        h *= 2
    if scale != 1.0:
        y *= np.asarray(scale, dtype=y.real.dtype)
    return y


def fast_baseline(meta: dict[str, Any], n: int, real_input: bool, threads: int) -> Method:
    """The best fast library for the file's recorded transform, or an unavailable Method saying why."""
    import scipy.fft

    from bfly_cli import transforms

    name = str(meta.get("transform"))
    options = dict(meta.get("transform_options") or {})
    if name in transforms.names():
        try:  # the file's recorded options are untrusted: checked like --options before scipy sees them
            options = transforms.get(name).check(**options)
        except ValueError as exc:
            return Method("fast", "-", None, f"the file's transform_options are invalid ({exc})")
    scale = 1.0 / math.sqrt(n)
    w = {"workers": threads}
    norm = _scipy_norm(options)
    if name in ("dft", "idft"):
        fn = scipy.fft.fft if name == "dft" else scipy.fft.ifft
        return Method("fast", f"scipy.fft.{fn.__name__} ({norm})", lambda x: lambda: fn(x, norm=norm, **w))
    if name in ("dct", "dst"):
        fn = scipy.fft.dct if name == "dct" else scipy.fft.dst
        kind = int(options.get("type", 2))
        if options.get("norm", "paper") != "paper":
            return Method("fast", f"scipy.fft.{name} type {kind} ({norm})", lambda x: lambda: fn(x, type=kind, norm=norm, **w))
        return Method("fast", f"scipy.fft.{name} type {kind} / sqrt(N)", lambda x: lambda: _scaled(fn(x, type=kind, **w), scale))
    if name == "hadamard":
        return Method("fast", "numpy FWHT (1 thread)", lambda x: lambda: fwht(x, scale))
    if name == "hartley":
        if not real_input:
            return Method("fast", "-", None, "the FFT formula for the Hartley transform needs real input")
        return Method("fast", "scipy.fft.rfft (Hartley)", lambda x: lambda: _hartley(x, **w))
    if name == "convolution":
        return _convolution_baseline(n, options, real_input, threads)
    return Method("fast", "-", None, f"no fast library for transform {name!r}")


def _scipy_norm(options: dict[str, Any]) -> str:
    """scipy.fft's ``norm=`` for the recorded ``--norm`` (the DFT's default and ``paper`` are ortho;
    the DCT/DST's ``paper`` is handled by its caller)."""
    norm = str(options.get("norm", "ortho"))
    return "ortho" if norm == "paper" else norm


def _scaled(y: np.ndarray, scale: float) -> np.ndarray:
    y *= np.asarray(scale, dtype=y.real.dtype)
    return y


def _hartley(x: np.ndarray, workers: int) -> np.ndarray:
    """``cas`` transform / sqrt(N) of real ``x``: Re(F x) - Im(F x) with the unitary DFT F."""
    import scipy.fft

    f = scipy.fft.fft(x, norm="ortho", workers=workers)
    return f.real - f.imag


def _convolution_baseline(n: int, options: dict[str, Any], real_input: bool, threads: int) -> Method:
    """Circular convolution via FFT with the filter rebuilt as ``transforms/convolution.py`` does."""
    try:
        from bfly_cli.transforms.convolution import load_filter

        c = load_filter(options["filter"], n) if options.get("filter") else \
            np.random.default_rng(int(options.get("seed", 0))).standard_normal(n)
    except Exception as exc:  # a moved filter file only costs the baseline, not the benchmark
        return Method("fast", "-", None, f"cannot rebuild the convolution filter: {exc}")
    col = c / math.sqrt(n)
    if real_input and not np.iscomplexobj(col):
        return Method("fast", "scipy.fft.rfft/irfft convolution", lambda x: _rfft_convolve(col, x, threads))
    return Method("fast", "scipy.fft.fft/ifft convolution", lambda x: _fft_convolve(col, x, threads))


def _rfft_convolve(col: np.ndarray, x: np.ndarray, workers: int) -> Timed:
    """Real circular convolution; the filter spectrum is computed once, in the input's precision."""
    import scipy.fft

    n = x.shape[-1]
    spec = scipy.fft.rfft(col.astype(x.dtype))
    return lambda: scipy.fft.irfft(scipy.fft.rfft(x, workers=workers) * spec, n=n, workers=workers)


def _fft_convolve(col: np.ndarray, x: np.ndarray, workers: int) -> Timed:
    import scipy.fft

    spec = scipy.fft.fft(col.astype(np.result_type(x.dtype, np.complex64)))
    return lambda: scipy.fft.ifft(scipy.fft.fft(x, workers=workers) * spec, workers=workers)


def kernel_method(factors: Factors, threads: int, dtype: np.dtype) -> tuple[Method, bool]:
    """The compiled kernel when built and able to run these factors, else the numpy reference
    (the label says why); and whether the kernel is the one timed.

    The kernel is driven through its prepared ``Plan`` (twiddles converted once per input dtype,
    outside the timing, as a pipeline would); each call still allocates its output, like scipy.
    A plan that cannot be built (a step kind the kernel does not implement yet) is reported, not
    fatal: the benchmark of everything else is still worth having.
    """
    if not kernel.available():
        return _reference_method(factors, "compiled kernel not built")
    unsupported = kernel.unsupported_kinds(factors)
    if unsupported:
        return _reference_method(factors, f"the compiled kernel has no op for {', '.join(unsupported)} steps")
    try:
        probe = kernel.Plan(factors, dtype)
    except ValueError as exc:
        return _reference_method(factors, f"the compiled kernel cannot run these factors: {exc}")
    if not probe.compiled:
        return _reference_method(factors, "the compiled kernel did not take these factors")

    def prepare(x: np.ndarray) -> Timed:
        plan = kernel.Plan(factors, x.dtype)
        return lambda: plan.apply(x, threads=threads)

    return Method("butterfly", "compiled kernel", prepare), True


def _reference_method(factors: Factors, why: str) -> tuple[Method, bool]:
    return Method("butterfly", f"numpy reference ({why})", lambda x: lambda: factors.apply_reference(x)), False


def torch_method(factors: Factors, device: str, key: str = "torch") -> Method:
    """The torch path (``torch_ops``) on ``device``; input moved there once, outside the timing."""
    import torch

    from .torch_ops import apply_steps_torch, factors_to_torch

    steps = factors_to_torch(factors, device)

    def prepare(x: np.ndarray) -> Timed:
        xt = torch.as_tensor(x, device=device)
        return lambda: apply_steps_torch(steps, xt)

    return Method(key, f"torch ({device})", prepare, to_numpy=lambda y: y.cpu().numpy())


def dense_method(factors: Factors, device: str) -> Method:
    """GEMV (batch 1) / GEMM with the reconstructed matrix, in the factors' dtype, via torch."""
    import torch

    n = factors.n
    itemsize = np.dtype(factors.dtype).itemsize
    if n * n * itemsize > MAX_DENSE_BYTES:
        return Method("dense", "-", None, f"the dense matrix would need {n * n * itemsize / 2**30:.1f} GiB")
    dense = torch.as_tensor(np.ascontiguousarray(factors.to_dense()), device=device)

    def prepare(x: np.ndarray) -> Timed:
        xt = torch.as_tensor(x, device=device).to(torch.promote_types(dense.dtype, _torch_dtype(x.dtype)))
        m = dense.to(xt.dtype)
        if x.shape[0] == 1:
            v = xt[0]
            return lambda: torch.mv(m, v)
        mt = m.T
        return lambda: torch.matmul(xt, mt)

    label = "torch.mv / torch.matmul" + (f" ({device})" if device != "cpu" else "")
    return Method("dense", label, prepare, to_numpy=lambda y: y.cpu().numpy().reshape(-1, n))


def _torch_dtype(dtype: np.dtype):
    import torch

    return torch.from_numpy(np.empty(0, dtype)).dtype


def input_dtype(factors: Factors) -> np.dtype:
    """The natural input: the factors' dtype, but real when a ``real`` step makes M real-linear only."""
    dtype = np.dtype(factors.dtype)
    if any(step.kind == "real" for step in factors.steps):
        return np.empty(0, dtype).real.dtype
    return dtype


def make_input(batch: int, n: int, dtype: np.dtype, seed: int = 0) -> np.ndarray:
    """A reproducible random ``(batch, n)`` input in ``dtype`` (complex gets a random imaginary part)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, n))
    if np.dtype(dtype).kind == "c":
        x = x + 1j * rng.standard_normal((batch, n))
    return np.ascontiguousarray(x.astype(dtype))


def build_methods(factors: Factors, device: str, threads: int) -> tuple[list[Method], bool]:
    """The four methods for ``device``; and whether the compiled kernel is the butterfly row."""
    real_input = input_dtype(factors).kind == "f"
    if is_cuda(device):
        butterfly = torch_method(factors, device, key="butterfly")
        torch_row = Method("torch", "-", None, "on cuda the butterfly row is the torch path")
        return [butterfly, torch_row, dense_method(factors, device), cuda_fast_baseline(factors.meta, device)], False
    butterfly, used_kernel = kernel_method(factors, threads, input_dtype(factors))
    methods = [butterfly, torch_method(factors, "cpu"), dense_method(factors, "cpu"),
               fast_baseline(factors.meta, factors.n, real_input, threads)]
    return methods, used_kernel


def cuda_fast_baseline(meta: dict[str, Any], device: str = "cuda") -> Method:
    """cuFFT through ``torch.fft`` for the DFT pair; other transforms have no GPU baseline here."""
    import torch

    name = str(meta.get("transform"))
    if name not in ("dft", "idft"):
        return Method("fast", "-", None, f"no GPU fast library wired up for transform {name!r}")
    fn = torch.fft.fft if name == "dft" else torch.fft.ifft
    norm = _scipy_norm(dict(meta.get("transform_options") or {}))

    def prepare(x: np.ndarray) -> Timed:
        xt = torch.as_tensor(x, device=device)
        return lambda: fn(xt, norm=norm)

    return Method("fast", f"torch.fft.{fn.__name__} ({device})", prepare, to_numpy=lambda y: y.cpu().numpy())


def agreement(methods: list[Method], factors: Factors, x: np.ndarray) -> dict[str, float | None]:
    """Relative difference of every method's output from the numpy reference on the same input.

    For the butterfly, torch and dense rows this is rounding noise; for the fast library it is the
    factorization's own error on this input, so a wrongly picked baseline cannot go unnoticed.
    """
    ref = factors.apply_reference(x.astype(np.result_type(x.dtype, np.float64)))
    norm = float(np.linalg.norm(ref)) or 1.0
    out: dict[str, float | None] = {}
    for method in methods:
        if not method.available:
            out[method.key] = None
            continue
        y = np.asarray(method.result(x)).reshape(ref.shape)
        out[method.key] = float(np.linalg.norm(y.astype(np.result_type(y.dtype, np.float64)) - ref)) / norm
    return out


def bench_batch(methods: list[Method], x: np.ndarray, repeat: int, sync: Callable[[], None]) -> dict[str, Any]:
    """One row of the result: microseconds per vector of every method, and the two headline ratios."""
    batch = x.shape[0]
    us: dict[str, float | None] = {}
    for method in methods:
        us[method.key] = median_seconds(method.prepare(x), repeat, sync) / batch * 1e6 if method.available else None
    return {"batch": batch, "us_per_vector": us,
            "ratios": {"dense_over_butterfly": _ratio(us["dense"], us["butterfly"]),
                       "butterfly_over_fast": _ratio(us["butterfly"], us["fast"])}}


def _ratio(num: float | None, den: float | None) -> float | None:
    return num / den if num is not None and den else None


def run_bench(
    factors: Factors,
    *,
    file: str | None = None,
    batches: list[int] | tuple[int, ...] = DEFAULT_BATCHES,
    threads: int | None = None,
    device: str = "cpu",
    repeat: int = DEFAULT_REPEAT,
) -> dict[str, Any]:
    """Time every method at every batch size; return the ``bfly bench --json`` document."""
    import torch

    threads = kernel.default_threads() if threads is None else threads
    _check_args(factors, batches, threads, repeat)
    check_device(device)
    dtype = input_dtype(factors)
    sync = (lambda: torch.cuda.synchronize(device)) if is_cuda(device) else (lambda: None)
    with thread_limit(threads), torch.inference_mode():
        methods, used_kernel = build_methods(factors, device, threads)
        rel_diff = agreement(methods, factors, make_input(min(batches), factors.n, dtype))
        rows = [bench_batch(methods, make_input(b, factors.n, dtype, seed=b), repeat, sync) for b in batches]
    return _document(factors, file, device, threads, repeat, dtype, methods, used_kernel, rel_diff, rows)


def _check_args(factors: Factors, batches, threads: int, repeat: int) -> None:
    from .limits import check  # the CLI's ranges, for library callers too (torch overflows past a C int)

    check("--threads", threads)
    check("--repeat", repeat)
    if not batches or min(batches) < 1 or len(batches) > MAX_BATCHES:
        raise BflyError(f"--batch: give 1 to {MAX_BATCHES} positive batch sizes, e.g. --batch 1,16,256")
    need = max(batches) * factors.n * 16
    if need > MAX_INPUT_BYTES:
        raise BflyError(f"--batch {max(batches)} at N = {factors.n} needs {need / 2**30:.1f} GiB per input; use a smaller batch")


def _document(factors: Factors, file, device, threads, repeat, dtype, methods, used_kernel, rel_diff, rows) -> dict[str, Any]:
    meta = factors.meta
    return {
        "file": file,
        "transform": meta.get("transform"),
        "transform_options": meta.get("transform_options") or {},
        "n": factors.n,
        "structure": factors.structure,
        "dtype": str(factors.dtype),
        "input_dtype": str(dtype),
        "device": device,
        "threads": threads,
        "repeat": repeat,
        "kernel_available": used_kernel,
        "accuracy": {key: meta.get(key) for key in ("rel_error", "rmse", "max_abs_error", "exact")},
        "methods": {m.key: {"label": m.label, "available": m.available, "reason": m.reason} for m in methods},
        "rel_diff": rel_diff,
        "results": rows,
    }
