"""bfly_cli/solvers/closed_form/bp_order.py: the discovered B.P order is canonical.

Whatever order the columns arrive in, ``discover_permutation`` returns one of the same butterfly
class (the same chunk partitions at every split level) with the first column first. The target is
shuffled here, so a discovery that merely echoed its input order would fail.
"""

from __future__ import annotations

import numpy as np
import pytest

from bfly_cli import transforms
from bfly_cli.solvers.closed_form.bp_order import discover_permutation


def _partitions(order: np.ndarray) -> list[frozenset]:
    """The column sets of the aligned chunks of 2, 4, ... N/2 positions (computed here, not imported)."""
    n = len(order)
    return [frozenset(frozenset(order[k:k + size]) for k in range(0, n, size))
            for size in (1 << lev for lev in range(1, n.bit_length() - 1))]


@pytest.mark.parametrize("name", ["dft", "hadamard"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_any_column_order_gives_the_same_class_with_column_zero_first(name, seed):
    n = 32
    target = transforms.build(name, n)
    reference = discover_permutation(target)
    shuffle = np.random.default_rng(seed).permutation(n)
    found = discover_permutation(target[:, shuffle])
    assert found[0] == 0  # the group holding (the shuffled matrix's) column 0 comes first
    assert _partitions(shuffle[found]) == _partitions(reference)  # the same class, in the original labels
