"""A bounded, thread-safe cache of kernel plans, so every public apply path runs at kernel speed.

Building a :class:`~bfly_cli.kernel.Plan` casts the factor data and compiles the stage list: at
N = 4096 that costs ~30x one batch-1 apply. scipy.fft caches its plans the same way; here a plan
embeds the factors' numbers, so the key is the factors object's *identity*, the input dtype and
the identity of each step's data array (replacing a step or its array makes a new plan). Changing
the numbers of a step's array *in place* after it has been applied is not detected: call
:func:`clear` (or build a new :class:`~bfly_cli.factors.Factors`) after doing that.

An entry dies with its factors object (a weak reference evicts it), and at most :data:`CAPACITY`
plans are kept (oldest first out). A hit is one dictionary lookup, without the lock (a dict read
is atomic in CPython): the whole point is that a batch-1 call costs what the kernel costs.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from typing import Any, Callable

import numpy as np

CAPACITY = 32

_lock = threading.Lock()
_plans: "OrderedDict[tuple, Any]" = OrderedDict()
_finalizers: dict[int, weakref.finalize] = {}
_MISSING = object()


def cached_plan(factors: Any, in_dtype: Any) -> Any:
    """The :class:`~bfly_cli.kernel.Plan` of ``factors`` for ``in_dtype`` input, built once."""
    from .kernel import Plan

    dtype = np.dtype(in_dtype)
    return _lookup(factors, ("plan", dtype.str), lambda: Plan(factors, dtype))


def plan_for_input(factors: Any, x_dtype: np.dtype) -> Any:
    """The plan that :func:`bfly_cli.kernel.apply` uses for input of ``x_dtype`` (None when the
    kernel does not cover the result dtype and the numpy reference must run), built once."""
    return _lookup(factors, ("input", x_dtype.str), lambda: _kernel().plan_for_dtype(factors, x_dtype))


def _lookup(factors: Any, kind: tuple, build: Callable[[], Any]) -> Any:
    key = (id(factors), kind, tuple([id(step.data) for step in factors.steps]))
    found = _plans.get(key, _MISSING)
    if found is not _MISSING:
        return found
    plan = build()  # outside the lock: building may take a while
    with _lock:
        _plans[key] = plan
        while len(_plans) > CAPACITY:
            _plans.popitem(last=False)
        if id(factors) not in _finalizers:
            _finalizers[id(factors)] = weakref.finalize(factors, _evict, id(factors))
    return plan


def _kernel() -> Any:
    from . import kernel  # imported on a miss only: kernel imports this module

    return kernel


def clear() -> None:
    """Forget every plan (after changing a step's numbers in place)."""
    with _lock:
        _plans.clear()


def size() -> int:
    """How many plans are cached now."""
    with _lock:
        return len(_plans)


def _evict(owner: int) -> None:
    """Drop the plans of a factors object that no longer exists (its id may be reused)."""
    with _lock:
        for key in [k for k in _plans if k[0] == owner]:
            del _plans[key]
        _finalizers.pop(owner, None)
