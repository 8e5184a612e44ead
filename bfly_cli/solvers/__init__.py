"""Solvers: each turns a dense square matrix into :class:`~bfly_cli.factors.Factors`.

A solver sees only the matrix, never the transform's name.

``hierarchical``  closed-form butterfly factorization B.P with permutation discovery
                  (:mod:`.hierarchical` for the factorization, :mod:`.permutation` for P).
"""

from __future__ import annotations

SOLVERS = ("hierarchical",)
