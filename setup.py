"""Build hook for the optional compiled kernel ``bfly_cli._kernel`` (metadata lives in pyproject.toml).

The kernel is an optimization, not a requirement: when the C compiler is missing or the build
fails, ``pip install`` still succeeds, prints that the kernel is disabled, and bfly falls back to
the numpy reference (saying so once at run time). Set ``BFLY_REQUIRE_KERNEL=1`` to make a failed
build fail the install instead (CI, packagers), or ``BFLY_NO_KERNEL=1`` to build without it (a
pure-Python package in seconds: the kernel's compile takes minutes, one function per instruction
set).

Flags: ``-O3`` without ``-ffast-math`` (NaN must propagate and results must match the reference),
no ``-march=native`` (wheels must run on any x86-64); the kernel picks AVX-512VL, AVX2+FMA or
baseline code at load time through gcc's ``target_clones`` instead.
"""

from __future__ import annotations

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

_REQUIRED = os.environ.get("BFLY_REQUIRE_KERNEL", "") not in ("", "0")
_SKIPPED = os.environ.get("BFLY_NO_KERNEL", "") not in ("", "0")


class OptionalBuildExt(build_ext):
    """build_ext that turns a compiler failure into a warning unless the kernel is required."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any build failure means "no kernel"
            self._disabled(exc)

    def build_extension(self, ext: Extension) -> None:
        try:
            import numpy  # a build requirement: the kernel's one-call path allocates through numpy's C API

            ext.include_dirs = [*ext.include_dirs, numpy.get_include()]
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001 - no numpy headers is "no kernel" too
            self._disabled(exc)

    def _disabled(self, exc: Exception) -> None:
        if _REQUIRED:
            raise exc
        print(f"bfly: building the compiled kernel failed ({exc}); it is disabled and bfly will use "
              "the numpy reference (set BFLY_REQUIRE_KERNEL=1 to make this an error)", file=sys.stderr)


def _compile_args() -> list[str]:
    if sys.platform == "win32":
        return ["/O2"]
    return ["-O3", "-std=gnu11", "-pthread", "-fno-math-errno"]


kernel = Extension(
    "bfly_cli._kernel",
    sources=["bfly_cli/_kernel.c"],
    extra_compile_args=_compile_args(),
    extra_link_args=[] if sys.platform == "win32" else ["-pthread"],
    optional=not _REQUIRED,
)

setup(ext_modules=[] if _SKIPPED else [kernel], cmdclass={"build_ext": OptionalBuildExt})
