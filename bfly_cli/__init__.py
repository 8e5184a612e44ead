"""bfly: learn fast butterfly factorizations of linear transforms.

Library API (the ``bfly`` command is a thin layer over these):

One call per CLI verb (same results and metadata as the command)
    learn(target, n=None, **options)                "dct" (with n), "m.npy" or an array -> Factors;
                                                    save() gives the file 'bfly learn' writes
    analyze(target, n=None, **options)              the dict 'bfly analyze --json' prints
    verify(path, tol=None, source=None)             the dict 'bfly verify --json' prints
    bench(path_or_factors, batches=None, threads=1)  the dict 'bfly bench --json' prints

Learning
    factorize(matrix, solver=..., dtype=..., tol=...)  factor a dense matrix -> Factors
                                                    (bfly_cli.learning.learn; the name differs from
                                                    the module so the two never shadow each other)
    resolve(name_or_path, n, **options)             build a named transform or load a matrix file

Factors and files
    Factors, Step                                   the steps (permutation, butterfly, ...) and reference multiply
    save(factors, path, force=False)                write the HDF5 factor file atomically
    load(path)                                      read and validate a factor file
    verify_file(path, tol=None)                     rebuild the target, recompute and compare the errors
    export_factors(factors, output, fmt)            npz / pt / mat / json copies of the factors
    load_export(path)                               read one back

(API names never equal a submodule's name: importing the submodule would replace the function.)

Running factors
    apply(factors, x, threads=None)                 y = M x with the compiled kernel (numpy fallback)

Errors
    BflyError, CheckFailed, FormatError

Heavy modules (numpy, h5py) load on first use, so ``import bfly_cli`` stays cheap.
"""

from __future__ import annotations

from typing import Any

from ._version import __version__
from .errors import BflyError, CheckFailed, FormatError

_LAZY = {
    "learn": ("verbs", "learn"),
    "analyze": ("verbs", "analyze"),
    "bench": ("verbs", "bench"),
    "factorize": ("learning", "learn"),
    "resolve": ("targets", "resolve"),
    "Factors": ("factors", "Factors"),
    "Step": ("factors", "Step"),
    "save": ("h5format", "save"),
    "load": ("h5format", "load"),
    "verify": ("verification", "verify"),
    "verify_file": ("verification", "verify"),
    "export_factors": ("export", "export"),
    "load_export": ("export", "load_export"),
    "apply": ("kernel", "apply"),
}

__all__ = ["__version__", "BflyError", "CheckFailed", "FormatError", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(f"{__name__}.{module}"), attr)
        globals()[name] = value  # resolved once: later lookups (bfly_cli.apply in a loop) are plain
        return value
    raise AttributeError(f"module 'bfly_cli' has no attribute {name!r}")
