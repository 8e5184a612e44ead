"""The solver and route registry: every entry works, and a new route cannot break a command.

Each route is called on a member of its class built by another road (scipy, a naive formula)
and on a matrix outside its class; auto and analyze are checked to read the registry rather than
a table of names of their own.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.fft
import scipy.linalg

from bfly_cli.analysis import analyze
from bfly_cli.factors import Factors
from bfly_cli.solvers import RouteUnavailable, registry
from bfly_cli.solvers.auto import solve_auto

N = 32
_MEMBERS = {
    "bp": lambda: scipy.fft.fft(np.eye(N), axis=0, norm="ortho"),
    "real_rank2": lambda: scipy.fft.dct(np.eye(N), axis=0) / np.sqrt(N),
    "two_butterfly": lambda: scipy.linalg.circulant(np.random.default_rng(0).standard_normal(N)) / np.sqrt(N),
    "approximate": lambda: np.random.default_rng(1).standard_normal((N, N)),
}
_OUTSIDE = np.random.default_rng(2).standard_normal((N, N))


def _rel(steps, a: np.ndarray) -> float:
    dense = Factors(a.shape[0], steps).apply_reference(np.eye(a.shape[0])).T
    return float(np.linalg.norm(dense - a) / np.linalg.norm(a))


def test_every_route_has_a_member_here() -> None:
    assert {r.name for r in registry.ROUTES} == set(_MEMBERS)


@pytest.mark.parametrize("item", registry.ROUTES, ids=lambda r: r.name)
def test_route_contract(item: registry.Route) -> None:
    a = _MEMBERS[item.name]()
    steps, extra = item.solve(a) if item.exact_route else item.solve(a, 1)
    assert isinstance(extra, dict) and steps
    if item.exact_route:
        assert _rel(steps, a) < 1e-12
        with pytest.raises(RouteUnavailable):
            item.solve(_OUTSIDE)
    else:
        assert _rel(steps, a) < 1.0


def test_registry_lookup_names_the_known_routes() -> None:
    assert registry.route("bp").verdict == "exact B.P"
    with pytest.raises(KeyError, match="bp, real_rank2"):
        registry.route("nope")


def test_a_new_route_reaches_auto_and_analyze(monkeypatch: pytest.MonkeyPatch) -> None:
    # A route nobody else has heard of: it factors the identity-scaled matrix as one diagonal step.
    def diagonal_only(matrix: np.ndarray):
        if np.count_nonzero(matrix - np.diag(np.diag(matrix))):
            raise RouteUnavailable("not diagonal")
        return [Step("diagonal", np.diag(matrix).astype(complex))], {}

    from bfly_cli.factors import Step

    new = registry.Route("diagonal", "D", "a diagonal", "exact diagonal", diagonal_only, registry.Memory(1))
    monkeypatch.setattr(registry, "ROUTES", (new, *registry.ROUTES))
    a = np.diag(np.arange(1.0, N + 1))
    steps, meta = solve_auto(a)
    assert meta["auto_route"] == "diagonal" and _rel(steps, a) == 0.0
    report = analyze(a)
    assert report["route"] == "diagonal" and report["verdict"] == "exact diagonal"


def test_solver_help_lists_every_solver() -> None:
    from bfly_cli.commands.learn_cmd import _SOLVER_HELP

    for item in registry.SOLVERS:
        assert item.name in _SOLVER_HELP
    assert registry.SOLVER_NAMES == tuple(s.name for s in registry.SOLVERS)


def test_routes_are_frozen_records() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        registry.ROUTES[0].name = "x"  # type: ignore[misc]
