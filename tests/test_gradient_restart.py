"""bfly_cli/solvers/gradient/restart.py: the best of several starts."""

from __future__ import annotations

from bfly_cli.solvers.gradient.restart import best_of_starts


def test_best_of_starts_stops_at_the_first_good_fit():
    losses = [0.5, 1e-12, 1e-20]
    calls = []

    def fit(attempt):
        calls.append(attempt)
        return [f"steps {attempt}"], losses[attempt]

    found = best_of_starts(3, fit, good=1e-10)
    assert calls == [0, 1] and found.starts == 2 and found.loss == 1e-12 and found.steps == ["steps 1"]


def test_best_of_starts_keeps_the_best_when_none_is_good():
    losses = [0.5, 0.1, 0.3]
    found = best_of_starts(3, lambda k: ([k], losses[k]), good=1e-10)
    assert found.starts == 3 and found.loss == 0.1 and found.steps == [1]
