"""Solvers: each turns a dense square matrix into :class:`~bfly_cli.factors.Factors`.

A solver sees only the matrix, never the transform's name.

``hierarchical``  closed-form butterfly factorization B.P with permutation discovery
                  (:mod:`.hierarchical` for the factorization, :mod:`.permutation` for P).
``real_rank2``    real matrices with rank-2 blocks (DCT/DST-like): ``[permutation, rank2]``
                  (:mod:`.real_routes`).
``auto``          tries B.P, real_rank2, two butterflies, then the best approximation, and keeps
                  the first exact one (:mod:`.auto`).
``gradient``      the seed paper's differentiable learner: BP/BPP/BPBP from random init with
                  a relaxed permutation, neighbour search and float64 polish (:mod:`.gradient`).
"""

from __future__ import annotations

SOLVERS = ("hierarchical", "auto", "real_rank2", "gradient")


class RouteUnavailable(Exception):
    """A structural route (real part, two butterflies, approximation) cannot apply to this matrix.

    Raised by a route's solver when its preconditions fail (e.g. a complex matrix given to a
    real-only route, repeated eigenvalues for the two-butterfly route). It is deliberately *not* a
    :class:`~bfly_cli.errors.BflyError`: ``--solver auto`` catches it and moves on to the next
    route, recording ``str(exc)`` as the reason; a solver called directly by name converts it to a
    ``BflyError`` so the user sees one line and exit code 2.
    """
