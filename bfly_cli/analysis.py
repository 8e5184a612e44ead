"""Structure report: how far a matrix is from rank-1 / rank-2 block structure, and the verdict.

For a column order P and a split level l (1 <= l < L), the hierarchical two-factor split
partitions ``T P^T`` into N blocks of shape ``2^(L-l) x 2^l`` (rows ``(c, b)``, columns ``(a, e)``
with b, e the low l bits; block ``(a, b)``). T P^T is a butterfly exactly when every block at
every level has rank 1, and a rank-2 ("real part of a complex butterfly") chain when every block
has rank <= 2. The report gives, per level, the relative energy beyond rank 1 under the B.P
order (:func:`~bfly_cli.solvers.closed_form.bp_order.discover_permutation`) and beyond rank 2 under the
rank-2 order (:func:`~bfly_cli.solvers.closed_form.rank2_order.discover_plane_permutation`):
``sum over blocks of sigma_{r+1}^2 + ... / ||T||_F^2``.

The verdict runs the same closed-form routes as ``--solver auto`` in the same order (B.P, real
rank-2, two butterflies; :data:`~bfly_cli.solvers.registry.ROUTES`) and judges them the same way
(:func:`~bfly_cli.metrics.exactness`), stopping at the first structured one, so it always names
the structure that ``bfly learn`` then picks, with the noise floor it estimated (the relative
distance from the matrix to that structure): e.g. "B.P up to 2e-08 (float32 input)". The
approximation route (a polish) is not run: when nothing is structured the verdict is
"approximate only".
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .solvers.numerics import tail_energy
from .solvers.registry import Route

def analyze(matrix: np.ndarray) -> dict[str, Any]:
    """The per-level table, the routes tried and the verdict (see the module docstring)."""
    from .metrics import exactness, input_precision
    from .solvers.auto import _attempt
    from .solvers.registry import ROUTES

    from .learning import check_values
    from .metrics import scale_by_power_of_two

    matrix = np.asarray(matrix)
    matrix = scale_by_power_of_two(matrix, -check_values(matrix))  # exact; as learn() does (#13 item 5)
    precision = input_precision(matrix)
    working = str(np.real(np.empty(0, matrix.dtype)).dtype)
    levels = _level_table(matrix)
    tried = []
    verdict, route, noise = "approximate only", "approximate", None
    for item in ROUTES:
        if not item.exact_route:
            continue
        outcome = _attempt(item, matrix, 1, precision, working)
        tried.append(outcome.record)
        if outcome.structured:
            route, noise = item.name, outcome.rel_error
            verdict = _verdict(item, exactness(noise, precision, working), noise, precision)
            break
    return {"n": matrix.shape[0], "complex": bool(np.iscomplexobj(matrix)), "input_precision": precision,
            "levels": levels, "route": route, "verdict": verdict, "noise_floor": noise, "tried": tried}


def _verdict(item: "Route", wording: str, noise: float, precision: str) -> str:
    """``"exact B.P"``, ``"B.P up to 2e-08 (float32 input)"``, ``"B.P up to 1e-06 (near-exact: ...)"``."""
    structure = item.title
    if wording == "exact":
        return item.verdict
    if wording.startswith("exact to input precision"):
        return f"{structure} up to {noise:.0e} ({precision} input)"
    return f"{structure} up to {noise:.0e} (near-exact: the structure plus noise)"


def _level_table(matrix: np.ndarray) -> list[dict[str, Any]]:
    """Rows ``{level, block, rank1_tail, rank2_tail}`` for split levels 1 .. L-1."""
    from .solvers.closed_form.bp_order import discover_permutation
    from .solvers.closed_form.rank2_order import discover_plane_permutation

    n = matrix.shape[0]
    levels = n.bit_length() - 1
    bp_order = matrix[:, discover_permutation(matrix)]
    rank2_order = None
    if not np.iscomplexobj(matrix) and n >= 4:
        rank2_order = matrix[:, _best_plane_order(matrix)]
    total = float(np.sum(np.abs(matrix) ** 2)) or 1.0
    rows = []
    for lev in range(1, levels):
        tail1 = tail_energy(bp_order, lev, 1) / total
        tail2 = tail_energy(rank2_order, lev, 2) / total if rank2_order is not None else None
        rows.append({"level": lev, "block": [1 << (levels - lev), 1 << lev], "rank1_tail": tail1, "rank2_tail": tail2})
    return rows


def _best_plane_order(matrix: np.ndarray) -> np.ndarray:
    """The rank-2 order the real rank-2 route uses (discovered once, deterministic)."""
    from .solvers.closed_form.rank2_order import discover_plane_permutation

    return discover_plane_permutation(matrix).perm
