"""Solvers: each turns a dense square matrix into :class:`~bfly_cli.factors.Factors` steps.

A solver sees only the matrix, never the transform's name. Three families, one folder each:

``closed_form/``  exact routes read off the matrix (B.P, real rank-2, two butterflies); numpy only.
``approximate/``  the best butterfly approximation when nothing exact exists.
``gradient/``     the seed paper's differentiable learner and its refinement engine.

:mod:`.auto` is the route table ``--solver auto`` walks; :mod:`.registry` lists every solver
and route once (name, callable, structure, verdict text), read by ``learn``, ``analyze``, the CLI
help and the docs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the CLI imports this package for its help text: numpy only when a solver runs
    import numpy as np



class RouteUnavailable(Exception):
    """A structural route (real part, two butterflies, approximation) cannot apply to this matrix.

    Raised by a route's solver when its preconditions fail (e.g. a complex matrix given to a
    real-only route, repeated eigenvalues for the two-butterfly route). It is deliberately *not* a
    :class:`~bfly_cli.errors.BflyError`: ``--solver auto`` catches it and moves on to the next
    route, recording ``str(exc)`` as the reason; a solver called directly by name converts it to a
    ``BflyError`` so the user sees one line and exit code 2.
    """


def checked_square(matrix: np.ndarray) -> np.ndarray:
    """Square, power-of-two, finite, in double precision whatever the input precision.

    Routes call this on entry: their algebra assumes it, and a matrix that fails it makes the
    route unavailable (so ``auto`` moves on) rather than producing a wrong answer.
    """
    import numpy as np

    m = np.asarray(matrix)
    n = m.shape[0] if m.ndim else 0
    if m.ndim != 2 or m.shape[1] != n or n < 2 or n & (n - 1):
        raise RouteUnavailable(f"needs a square matrix with a power-of-two size >= 2, got shape {m.shape}")
    if not np.all(np.isfinite(m)):
        raise RouteUnavailable("the matrix holds NaN or Inf values")
    return m.astype(np.complex128 if np.iscomplexobj(m) else np.float64, copy=False)  # no N x N copy in double


from .registry import SOLVER_NAMES as SOLVERS  # noqa: E402  (the registry needs RouteUnavailable above)
