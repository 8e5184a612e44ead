"""A bounded, thread-safe cache of kernel plans, so every public apply path runs at kernel speed.

Building a :class:`~bfly_cli.kernel.Plan` casts the factor data and compiles the stage list: at
N = 4096 that costs ~30x one batch-1 apply. scipy.fft caches its plans the same way; here a plan
embeds the factors' numbers, so the key is the factors object's *identity* and the input dtype, and
an entry is used only while every step still holds the same data array (replacing a step or its
array makes a new plan, which replaces the stale one). Changing
the numbers of a step's array *in place* after it has been applied is not detected: call
:func:`clear` (or build a new :class:`~bfly_cli.factors.Factors`) after doing that.

An entry dies with its factors object (a weak reference evicts it), and at most :data:`CAPACITY`
plans are kept (oldest first out). A hit is one dictionary lookup and a comparison of the steps'
data ids, without the lock (a dict read is atomic in CPython): the whole point is that a batch-1
call costs what the kernel costs.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from typing import Any, Callable

import numpy as np

CAPACITY = 32

_lock = threading.Lock()
# (id(factors), kind) -> (the steps' data arrays when the plan was built, plan). Holding the arrays
# (compared by identity) means a step replaced by a new array is a miss even if the new array
# lands at the old one's address, which a key of ids could not tell.
_plans: "OrderedDict[tuple, tuple[tuple, Any]]" = OrderedDict()
_finalizers: dict[int, weakref.finalize] = {}


def cached_plan(factors: Any, in_dtype: Any) -> Any:
    """The :class:`~bfly_cli.kernel.Plan` of ``factors`` for ``in_dtype`` input, built once."""
    from .kernel import Plan

    dtype = np.dtype(in_dtype)
    return _lookup(factors, ("plan", dtype), lambda: Plan(factors, dtype))


def plan_for_input(factors: Any, x_dtype: np.dtype) -> Any:
    """The plan that :func:`bfly_cli.kernel.apply` uses for input of ``x_dtype`` (None when the
    kernel does not cover the result dtype and the numpy reference must run), built once.

    The hit path is what a batch-1 call pays on top of the kernel, so it is kept to one dict
    read and one list comparison: the key holds the dtype object itself (hashing it is cheap;
    ``dtype.str`` builds a new string on every call and cost more than the kernel at N = 8)."""
    entry = _plans.get((id(factors), x_dtype))
    if entry is not None and _same_data(factors.steps, entry[0]):
        return entry[1]
    return _lookup(factors, x_dtype, lambda: _kernel().plan_for_dtype(factors, x_dtype))


def _same_data(steps: list, data: tuple) -> bool:
    """True when ``steps`` hold exactly the arrays ``data`` (by identity). A plain indexed loop:
    at 2-3 steps it costs a third of a list comprehension of ids (which builds a function)."""
    if len(steps) != len(data):
        return False
    i = 0
    for step in steps:
        if step.data is not data[i]:
            return False
        i += 1
    return True


def _lookup(factors: Any, kind: Any, build: Callable[[], Any]) -> Any:
    """The cached plan for ``(factors, kind)`` if the steps still hold the same data arrays, else a
    new one (built outside the lock: building may take a while) that replaces the stale entry."""
    key = (id(factors), kind)
    data = tuple([step.data for step in factors.steps])
    entry = _plans.get(key)
    if entry is not None and _same_data(factors.steps, entry[0]):
        return entry[1]
    plan = build()
    with _lock:
        _plans[key] = (data, plan)
        _plans.move_to_end(key)
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
