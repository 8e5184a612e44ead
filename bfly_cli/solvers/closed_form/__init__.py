"""Closed-form exact routes: structure read off the matrix in O(N^2 log N), no optimization.

numpy and scipy only (a test imports this package with torch unavailable). Each route returns
``(steps, extra_metadata)`` or raises :class:`~bfly_cli.solvers.RouteUnavailable`.

``bp_route``       B.P: :mod:`.bp_order` (column order discovery) + :mod:`.hierarchical` (twiddles,
                   built on the batched rank-one fit of :mod:`.rank_one`).
``rank2_route``    real matrices with rank-2 blocks (DCT/DST/Hartley): :mod:`.rank2_order` +
                   :mod:`.rank2_factor`.
``two_butterfly``  matrices diagonalized by a butterfly basis (circulants): :mod:`.eigenbasis`
                   reads the basis, :mod:`.butterfly_inverse` inverts it exactly.
"""
