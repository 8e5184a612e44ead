"""bfly_cli/solvers/gradient/options.py: the learner's knobs are checked with one-line messages."""

from __future__ import annotations

import numpy as np
import pytest

from bfly_cli import transforms
from bfly_cli.errors import BflyError
from bfly_cli.solvers.gradient.options import GradientOptions, check_options


@pytest.mark.parametrize("options, match", [
    ({"model": "BBP"}, "unknown model 'BBP'"),
    ({"field": "real"}, "complex matrix"),
    ({"field": "imaginary"}, "unknown field"),
    ({"real_model": "bogus"}, "unknown real_model 'bogus'"),
    ({"restarts": 0}, "restarts"),
    ({"steps": -1}, "steps"),
    ({"lr": -1.0}, "lr must be positive"),
    ({"device": "tpu"}, "unknown device 'tpu'"),
])
def test_bad_options_are_one_line_errors(options, match):
    with pytest.raises(BflyError, match=match) as info:
        check_options(GradientOptions(**options), transforms.build("dft", 4))
    assert "\n" not in str(info.value)


def test_good_options_pass_and_goal_is_the_squared_target():
    opts = GradientOptions(model="BPP", field="real", target=1e-6, lr=0.01)
    assert check_options(opts, np.eye(4)) is opts
    assert opts.goal == pytest.approx(1e-12, rel=1e-12)
