"""The fast-library baseline of ``bfly bench``: FFTW (through pyfftw) when installed, scipy.fft otherwise.

A ratio against a slow baseline flatters the butterfly, so the baseline is the fastest library at
hand and the document names it: FFTW with ``FFTW_MEASURE`` plans built outside the timed call
(the physical-limit anchor: the timed call is FFTW's own ``execute()`` on the planned buffers, any
normalization folded into the input or done in place, never pyfftw's Python-side scaling), else
scipy.fft (pocketfft). A transform neither library implements keeps scipy's or numpy's form and says so: the Hartley
transform through scipy's FFT, and the Walsh-Hadamard transform, which no installed library
offers, either as FFTW's size-2 ``REDFT00`` on each of the log2 N axes (exactly a WHT, compiled,
though FFTW does not plan it as well as a dedicated FWHT) or as a numpy loop labelled
"numpy WHT (not compiled)".

The target's identity comes from the file's metadata; it only picks the baseline. Every baseline
is then checked against the factors' own output by the caller (``bench.agreement``).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from .errors import BflyError
from .bench_timing import Method, Timed

FFTW = "FFTW"
SCIPY = "scipy.fft"
NUMPY = "numpy (not compiled)"
LIBRARIES = ("auto", "fftw", "scipy")
PLANNER = "FFTW_MEASURE"


def pyfftw_builders():
    """``pyfftw.builders`` if pyfftw is installed (the ``bench`` extra), else None."""
    try:
        import pyfftw.builders
    except ImportError:
        return None
    return pyfftw.builders


def fast_library(library: str = "auto") -> str:
    """The library the FFT-family baselines use: FFTW when pyfftw imports (or is asked for)."""
    if library not in LIBRARIES:
        raise BflyError(f"fast library {library!r}: choose one of {', '.join(LIBRARIES)}")
    if library == "scipy":
        return SCIPY
    if pyfftw_builders() is None:
        if library == "fftw":
            raise BflyError("pyfftw is not installed; pip install pyfftw (the 'bench' extra) or use library='scipy'")
        return SCIPY
    return FFTW


def fast_baseline(meta: dict[str, Any], n: int, real_input: bool, threads: int, library: str = "auto") -> Method:
    """The fastest library for the file's recorded transform, or an unavailable Method saying why."""
    from bfly_cli import transforms

    name = str(meta.get("transform"))
    options = dict(meta.get("transform_options") or {})
    if name in transforms.names():
        try:  # the file's recorded options are untrusted: checked like --options before scipy sees them
            options = transforms.get(name).check(**options)
        except ValueError as exc:
            return Method("fast", "-", None, f"the file's transform_options are invalid ({exc})")
    fftw = fast_library(library) == FFTW
    if name in ("dft", "idft"):
        return (_fftw_dft if fftw else _scipy_dft)(name, scipy_norm(options), threads)
    if name in ("dct", "dst"):
        return _trig_baseline(name, options, n, threads, fftw)
    if name == "hadamard":
        return _hadamard_baseline(n, real_input, threads, fftw)
    if name == "hartley":
        if not real_input:
            return Method("fast", "-", None, "the FFT formula for the Hartley transform needs real input")
        return Method("fast", "scipy.fft.fft (Hartley; pyfftw has no DHT)", lambda x: lambda: _hartley(x, threads),
                      library=SCIPY, threads=threads)
    if name == "convolution":
        return _convolution_baseline(n, options, real_input, threads, fftw)
    return Method("fast", "-", None, f"no fast library for transform {name!r}")


def scipy_norm(options: dict[str, Any]) -> str:
    """scipy.fft's ``norm=`` for the recorded ``--norm`` (the DFT's default and ``paper`` are ortho;
    the DCT/DST's ``paper`` is handled by its caller)."""
    norm = str(options.get("norm", "ortho"))
    return "ortho" if norm == "paper" else norm


def _scipy_dft(name: str, norm: str, threads: int) -> Method:
    import scipy.fft

    fn = scipy.fft.fft if name == "dft" else scipy.fft.ifft
    return Method("fast", f"scipy.fft.{fn.__name__} ({norm})", lambda x: lambda: fn(x, norm=norm, workers=threads),
                  library=SCIPY, threads=threads)


def _fftw_dft(name: str, norm: str, threads: int) -> Method:
    builders = pyfftw_builders()
    build = builders.fft if name == "dft" else builders.ifft

    def prepare(x: np.ndarray) -> Timed:
        # The normalization is folded into the input before planning and the timed call is FFTW's
        # own execute(): pyfftw's __call__ scales the output in Python (3 us of 4 at N = 256,
        # batch 1), which would flatter the butterfly against its physical-limit anchor.
        scaled = x * np.asarray(_dft_input_scale(name, norm, x.shape[-1]), dtype=x.dtype)
        return _executed(build(scaled, threads=threads, planner_effort=PLANNER))

    return Method("fast", f"FFTW {build.__name__} ({norm}, pyfftw, {PLANNER}, execute())", prepare,
                  library=FFTW, threads=threads)


def _dft_input_scale(name: str, norm: str, n: int) -> float:
    """The factor that turns FFTW's unnormalized forward (``dft``) or backward (``idft``) transform
    into numpy's ``norm`` convention, applied to the input once, outside the timed call."""
    inverse = name != "dft"
    return {"ortho": 1.0 / math.sqrt(n),
            "backward": 1.0 / n if inverse else 1.0,
            "forward": 1.0 if inverse else 1.0 / n}[norm]


def _executed(plan: Any) -> Timed:
    """A timed call that runs only FFTW's ``execute()`` on the planned buffers and returns the
    planned output array (no Python-side normalization or copy inside the measurement)."""
    execute, output = plan.execute, plan.output_array

    def run() -> np.ndarray:
        execute()
        return output

    return run


def _trig_reference(name: str, options: dict[str, Any], n: int, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    """scipy's DCT/DST of the recorded type, scaled as the transform was defined."""
    import scipy.fft

    fn = scipy.fft.dct if name == "dct" else scipy.fft.dst
    kind = int(options.get("type", 2))
    if options.get("norm", "paper") != "paper":
        norm = scipy_norm(options)
        return lambda x: fn(x, type=kind, norm=norm, workers=threads)
    scale = 1.0 / math.sqrt(n)
    return lambda x: _scaled(fn(x, type=kind, workers=threads), scale)


def _trig_baseline(name: str, options: dict[str, Any], n: int, threads: int, fftw: bool) -> Method:
    kind = int(options.get("type", 2))
    norm = options.get("norm", "paper")
    reference = _trig_reference(name, options, n, threads)
    label = f"{name} type {kind} ({'/ sqrt(N)' if norm == 'paper' else scipy_norm(options)})"
    scale = _output_scale(name, kind, n, reference) if fftw else None
    if scale is None:
        note = "" if not fftw else "; FFTW skipped: this normalization is not an output scaling"
        return Method("fast", f"scipy.fft.{label}{note}", lambda x: lambda: reference(x), library=SCIPY, threads=threads)
    build = getattr(pyfftw_builders(), name)

    def prepare(x: np.ndarray) -> Timed:
        if np.iscomplexobj(x):  # FFTW's r2r transforms are real: the real and imaginary parts as one batch
            parts = np.ascontiguousarray(np.stack([x.real, x.imag]))
            plan = build(parts, type=kind, threads=threads, planner_effort=PLANNER)
            s = scale.astype(parts.dtype)
            execute, output = plan.execute, plan.output_array

            def run_complex() -> np.ndarray:
                execute()
                np.multiply(output, s, out=output)
                return output[0] + 1j * output[1]

            return run_complex
        plan, s = build(x, type=kind, threads=threads, planner_effort=PLANNER), scale.astype(x.dtype)
        execute, output = plan.execute, plan.output_array

        def run() -> np.ndarray:  # FFTW's execute() then the output scaling, in place: no allocation
            execute()
            return np.multiply(output, s, out=output)

        return run

    return Method("fast", f"FFTW {label} (pyfftw, {PLANNER}, execute(), scaled output)", prepare, library=FFTW,
                  threads=threads)


def _output_scale(name: str, kind: int, n: int, reference: Callable[[np.ndarray], np.ndarray]) -> np.ndarray | None:
    """Per-output factors ``s`` with ``reference(x) == s * FFTW's unnormalized transform(x)``, or None.

    Read off numerically (two random probes), so every scipy ``norm`` that is a diagonal output
    scaling is served by FFTW without transcribing scipy's conventions; the others (orthonormal
    types 1 and 3 also scale inputs) keep scipy.
    """
    import scipy.fft

    raw = scipy.fft.dct if name == "dct" else scipy.fft.dst
    probes = np.random.default_rng(0).standard_normal((2, n)) + 0.5
    unnormalized = raw(probes, type=kind, norm="backward")
    if np.any(np.abs(unnormalized[0]) < 1e-9):
        return None
    scale = reference(probes[:1])[0] / unnormalized[0]
    if not np.allclose(scale * unnormalized[1], reference(probes[1:])[0], rtol=1e-10, atol=1e-12):
        return None
    return scale


def _scaled(y: np.ndarray, scale: float) -> np.ndarray:
    y *= np.asarray(scale, dtype=y.real.dtype)
    return y


def _hartley(x: np.ndarray, workers: int) -> np.ndarray:
    """``cas`` transform / sqrt(N) of real ``x``: Re(F x) - Im(F x) with the unitary DFT F."""
    import scipy.fft

    f = scipy.fft.fft(x, norm="ortho", workers=workers)
    return f.real - f.imag


def fwht(x: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Fast Walsh-Hadamard transform along the last axis (Sylvester order), times ``scale``.

    ``y = scale * H x`` with ``H[i, j] = (-1)^popcount(i & j)``: log2 N passes of sums and
    differences over pairs at stride ``h``, vectorised over the batch. A numpy loop, not compiled
    code: as a baseline it is labelled so (no installed library has a dedicated FWHT).
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


def _hadamard_baseline(n: int, real_input: bool, threads: int, fftw: bool) -> Method:
    scale = 1.0 / math.sqrt(n)
    if fftw and real_input and n >= 2:
        return Method("fast", f"FFTW WHT (size-2 REDFT00 on log2 N axes, pyfftw, {PLANNER})",
                      lambda x: _fftw_wht(x, scale, threads), library=FFTW, threads=threads)
    return Method("fast", "numpy WHT (not compiled, 1 thread)", lambda x: lambda: fwht(x, scale),
                  library=NUMPY, threads=1)


def _fftw_wht(x: np.ndarray, scale: float, threads: int) -> Timed:
    """``scale * H x`` as FFTW's real DCT-I of size 2 (``[a + b, a - b]``) along every one of the
    log2 N axes of ``x`` reshaped to ``(batch, 2, ..., 2)``; the scale is folded into the input."""
    import pyfftw

    levels = x.shape[-1].bit_length() - 1
    shape = (*x.shape[:-1], *(2,) * levels)
    inp = pyfftw.empty_aligned(shape, dtype=x.dtype)
    out = pyfftw.empty_aligned(shape, dtype=x.dtype)
    axes = tuple(range(len(shape) - levels, len(shape)))
    plan = pyfftw.FFTW(inp, out, axes=axes, direction=["FFTW_REDFT00"] * levels, flags=(PLANNER,), threads=threads)
    inp[...] = (x * np.asarray(scale, dtype=x.dtype)).reshape(shape)  # after planning: MEASURE overwrites
    run = _executed(plan)
    return lambda: run().reshape(x.shape)


def _convolution_baseline(n: int, options: dict[str, Any], real_input: bool, threads: int, fftw: bool) -> Method:
    """Circular convolution via FFT with the filter rebuilt as ``transforms/convolution.py`` does."""
    try:
        from bfly_cli.transforms.convolution import load_filter

        c = load_filter(options["filter"], n) if options.get("filter") else \
            np.random.default_rng(int(options.get("seed", 0))).standard_normal(n)
    except Exception as exc:  # a moved filter file only costs the baseline, not the benchmark
        return Method("fast", "-", None, f"cannot rebuild the convolution filter: {exc}")
    col = c / math.sqrt(n)
    real = real_input and not np.iscomplexobj(col)
    pair = "rfft/irfft" if real else "fft/ifft"
    if fftw:
        return Method("fast", f"FFTW {pair} convolution (pyfftw, {PLANNER})",
                      lambda x: _fftw_convolve(col, x, threads, real), library=FFTW, threads=threads)
    prepare = (lambda x: _rfft_convolve(col, x, threads)) if real else (lambda x: _fft_convolve(col, x, threads))
    return Method("fast", f"scipy.fft.{pair} convolution", prepare, library=SCIPY, threads=threads)


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


def _fftw_convolve(col: np.ndarray, x: np.ndarray, threads: int, real: bool) -> Timed:
    """The same convolution with FFTW plans for both transforms, built here, outside the timing."""
    import scipy.fft

    builders, n = pyfftw_builders(), x.shape[-1]
    if real:
        spec = scipy.fft.rfft(col.astype(x.dtype))
        forward = builders.rfft(x, threads=threads, planner_effort=PLANNER)
        backward = builders.irfft(forward() * spec, n=n, threads=threads, planner_effort=PLANNER)
    else:
        spec = scipy.fft.fft(col.astype(np.result_type(x.dtype, np.complex64)))
        forward = builders.fft(x.astype(np.result_type(x.dtype, np.complex64)), threads=threads, planner_effort=PLANNER)
        backward = builders.ifft(forward() * spec, threads=threads, planner_effort=PLANNER)
    return lambda: backward(forward() * spec)
