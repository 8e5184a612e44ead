"""Timing harness behind ``bfly bench``: learned factors against dense and fast-library baselines.

Everything is timed in one process, on the same input batch, in the same dtype and with the same
thread count, because the only numbers worth reporting are *ratios* measured under identical
conditions. The thread count defaults to 1: on a busy 2-core machine, torch's all-cores GEMM at
batch 16 took ~2,000 µs per vector against 0.35 µs with one thread, which turned the comparison
table into 6,000x ratios. Per batch, the methods are sampled in interleaved rounds
(:mod:`bfly_cli.bench_timing`), and every figure carries its median, minimum and interquartile
range in µs per vector; a figure whose spread is wide, or whose per-vector cost grows more than
3x from one batch size to the next, is flagged unstable, and so is every ratio it enters.

Methods (keys of the result document):

``butterfly``  the compiled kernel (:mod:`bfly_cli.kernel`) or, when it is not built, the numpy
               reference ``Factors.apply_reference`` (the label says which); on ``cuda`` the torch path.
``torch``      :mod:`bfly_cli.torch_ops` (the autograd/CUDA path), CPU only.
``dense``      ``torch`` GEMV (batch 1) / GEMM with the reconstructed matrix ``to_dense()``;
               torch is used because ``torch.set_num_threads`` reliably pins its BLAS threads.
``fast``       the fastest library for the file's recorded transform (:mod:`bfly_cli.bench_baselines`:
               FFTW through pyfftw when installed, else scipy.fft), if there is one.

The target's identity comes from the file's metadata (``transform``, ``transform_options``). That
is used only to *pick a baseline*; every baseline is checked against the factors' own output and
the difference is reported (``rel_diff``), so a baseline that does not match shows up at once.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

import numpy as np

from . import kernel, plan_cache
from .bench_baselines import fast_baseline, fast_library, fwht, scipy_norm  # noqa: F401  (re-exported)
from .bench_timing import GROWTH_LIMIT, SPREAD_LIMIT, Method, Timed, growth_reason, interleaved_samples, spread_reason, summarize
from .devices import check_device, is_cuda
from .errors import BflyError
from .factors import Factors

DEFAULT_BATCHES = (1, 16, 256)
DEFAULT_REPEAT = 15
DEFAULT_THREADS = 1  # a comparison table needs every method on the same, uncontended cores
MAX_INPUT_BYTES = 1 << 30
MAX_BATCHES = 64  # each batch size is a full round of measurements; more is a typo
MAX_DENSE_BYTES = 2 << 30
METHOD_KEYS = ("butterfly", "torch", "dense", "fast")
RATIOS = {"dense_over_butterfly": ("dense", "butterfly"), "butterfly_over_fast": ("butterfly", "fast")}


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
        probe = plan_cache.cached_plan(factors, dtype)
    except ValueError as exc:
        return _reference_method(factors, f"the compiled kernel cannot run these factors: {exc}")
    if not probe.compiled:
        return _reference_method(factors, "the compiled kernel did not take these factors")

    def prepare(x: np.ndarray) -> Timed:
        plan = plan_cache.cached_plan(factors, x.dtype)  # the probe's plan when the dtypes agree
        return lambda: plan.apply(x, threads=threads)

    label = f"compiled kernel (ops: {stage_summary(probe.stage_kinds)})"
    return Method("butterfly", label, prepare, library="bfly kernel", threads=threads), True


def stage_summary(kinds: list[str]) -> str:
    """What the plan made of each step, in order, repeats counted (``gather, radix4 fft x4, ...``):
    says which stages got the FFT specialization and which stayed general 2x2 blocks."""
    parts: list[str] = []
    for kind in kinds:
        if parts and parts[-1].split(" x")[0] == kind:
            count = int(parts[-1].rsplit(" x", 1)[1]) if " x" in parts[-1] else 1
            parts[-1] = f"{kind} x{count + 1}"
        else:
            parts.append(kind)
    return ", ".join(parts)


def _reference_method(factors: Factors, why: str) -> tuple[Method, bool]:
    return Method("butterfly", f"numpy reference ({why})", lambda x: lambda: factors.apply_reference(x),
                  library="numpy (not compiled)", threads=1), False


def torch_method(factors: Factors, device: str, key: str = "torch") -> Method:
    """The torch path (``torch_ops``) on ``device``; input moved there once, outside the timing."""
    import torch

    from .torch_ops import apply_steps_torch, factors_to_torch

    steps = factors_to_torch(factors, device)

    def prepare(x: np.ndarray) -> Timed:
        xt = torch.as_tensor(x, device=device)
        return lambda: apply_steps_torch(steps, xt)

    return Method(key, f"torch ({device})", prepare, to_numpy=lambda y: y.cpu().numpy(), library="torch",
                  threads=_torch_threads(device))


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
    return Method("dense", label, prepare, to_numpy=lambda y: y.cpu().numpy().reshape(-1, n), library="torch",
                  threads=_torch_threads(device))


def _torch_threads(device: str) -> int | None:
    """The CPU threads torch uses now (inside ``thread_limit``); None on a GPU."""
    import torch

    return None if is_cuda(device) else torch.get_num_threads()


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


def build_methods(factors: Factors, device: str, threads: int, library: str = "auto") -> tuple[list[Method], bool]:
    """The four methods for ``device``; and whether the compiled kernel is the butterfly row."""
    real_input = input_dtype(factors).kind == "f"
    if is_cuda(device):
        butterfly = torch_method(factors, device, key="butterfly")
        torch_row = Method("torch", "-", None, "on cuda the butterfly row is the torch path")
        return [butterfly, torch_row, dense_method(factors, device), cuda_fast_baseline(factors.meta, device)], False
    butterfly, used_kernel = kernel_method(factors, threads, input_dtype(factors))
    methods = [butterfly, torch_method(factors, "cpu"), dense_method(factors, "cpu"),
               fast_baseline(factors.meta, factors.n, real_input, threads, library)]
    return methods, used_kernel


def cuda_fast_baseline(meta: dict[str, Any], device: str = "cuda") -> Method:
    """cuFFT through ``torch.fft`` for the DFT pair; other transforms have no GPU baseline here."""
    import torch

    name = str(meta.get("transform"))
    if name not in ("dft", "idft"):
        return Method("fast", "-", None, f"no GPU fast library wired up for transform {name!r}")
    fn = torch.fft.fft if name == "dft" else torch.fft.ifft
    norm = scipy_norm(dict(meta.get("transform_options") or {}))

    def prepare(x: np.ndarray) -> Timed:
        xt = torch.as_tensor(x, device=device)
        return lambda: fn(xt, norm=norm)

    return Method("fast", f"torch.fft.{fn.__name__} ({device})", prepare, to_numpy=lambda y: y.cpu().numpy(),
                  library="cuFFT (torch.fft)")


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


def bench_batch(methods: list[Method], x: np.ndarray, repeat: int,
                sync: Callable[[], None] | None = None) -> dict[str, Any]:
    """One row of the result before the batch-to-batch check: every method's spread in µs per
    vector (sampled in interleaved rounds) and whether that spread is too wide to quote."""
    batch = x.shape[0]
    calls = {m.key: m.prepare(x) for m in methods if m.available}
    samples = interleaved_samples(calls, repeat, *([sync] if sync else []))
    spread: dict[str, dict | None] = {}
    stability: dict[str, dict | None] = {}
    for method in methods:
        if method.key not in samples:
            spread[method.key] = stability[method.key] = None
            continue
        summary = summarize(samples[method.key], 1e6 / batch)
        spread[method.key] = summary.as_dict()
        reason = spread_reason(summary)
        stability[method.key] = {"unstable": reason is not None, "reasons": [reason] if reason else [],
                                 "flags": ["wide spread"] if reason else []}
    return {"batch": batch, "us_per_vector": {k: v and v["median"] for k, v in spread.items()},
            "spread": spread, "stability": stability}


def measure(methods: list[Method], inputs: list[np.ndarray], repeat: int,
            sync: Callable[[], None] | None = None) -> list[dict[str, Any]]:
    """The ``results`` of the document: one row per input batch, each method's spread, the
    unstable flags (wide spread, or per-vector cost growing past the limit between consecutive
    batch sizes) and the headline ratios, each flagged when a figure it divides is unstable.

    Library callers can time methods of their own here (any :class:`Method` keys; the ratios
    need ``butterfly``, ``dense`` and ``fast``)."""
    rows = [bench_batch(methods, x, repeat, sync) for x in inputs]
    _flag_growth(rows)
    for row in rows:
        _add_ratios(row)
    return rows


def _flag_growth(rows: list[dict[str, Any]]) -> None:
    """Flag a method at a batch size whose per-vector cost exceeds the limit times the cost at the
    next smaller batch size measured (batching should amortize cost, never multiply it)."""
    ordered = sorted(rows, key=lambda row: row["batch"])
    for smaller, larger in zip(ordered, ordered[1:]):
        for key, current in larger["us_per_vector"].items():
            previous = smaller["us_per_vector"].get(key)
            if current is None or previous is None or smaller["batch"] == larger["batch"]:
                continue
            reason = growth_reason(smaller["batch"], previous, larger["batch"], current)
            if reason:
                larger["stability"][key]["unstable"] = True
                larger["stability"][key]["reasons"].append(reason)
                larger["stability"][key]["flags"].append("grows with batch")


def _add_ratios(row: dict[str, Any]) -> None:
    us, stability = row["us_per_vector"], row["stability"]
    unstable = {key: bool(v and v["unstable"]) for key, v in stability.items()}
    row["unstable"] = any(unstable.values())
    row["ratios"] = {name: _ratio(us.get(num), us.get(den)) for name, (num, den) in RATIOS.items()}
    row["ratio_unstable"] = {name: row["ratios"][name] is not None and (unstable.get(num, False) or unstable.get(den, False))
                             for name, (num, den) in RATIOS.items()}


def _ratio(num: float | None, den: float | None) -> float | None:
    return num / den if num is not None and den else None


def run_bench(
    factors: Factors,
    *,
    file: str | None = None,
    batches: list[int] | tuple[int, ...] = DEFAULT_BATCHES,
    threads: int = DEFAULT_THREADS,
    device: str = "cpu",
    repeat: int = DEFAULT_REPEAT,
    library: str = "auto",
) -> dict[str, Any]:
    """Time every method at every batch size; return the ``bfly bench --json`` document.

    ``library`` picks the fast baseline: ``auto`` (FFTW when pyfftw is installed, else
    scipy.fft), ``fftw`` or ``scipy``."""
    import torch

    _check_args(factors, batches, threads, repeat)
    check_device(device)
    dtype = input_dtype(factors)
    sync = (lambda: torch.cuda.synchronize(device)) if is_cuda(device) else None
    with thread_limit(threads), torch.inference_mode():
        methods, used_kernel = build_methods(factors, device, threads, library)
        rel_diff = agreement(methods, factors, make_input(min(batches), factors.n, dtype))
        rows = measure(methods, [make_input(b, factors.n, dtype, seed=b) for b in batches], repeat, sync)
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
        "fast_library": next((m.library for m in methods if m.key == "fast" and m.available), None),
        "unstable_limits": {"relative_iqr": SPREAD_LIMIT, "batch_growth": GROWTH_LIMIT},
        "unstable": any(row["unstable"] for row in rows),
        "methods": {m.key: {"label": m.label, "available": m.available, "reason": m.reason,
                            "library": m.library, "threads": m.threads} for m in methods},
        "rel_diff": rel_diff,
        "results": rows,
    }
