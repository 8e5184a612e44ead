"""Closed-form exact routes: structure read off the matrix in O(N^2 log N), no optimization.

numpy and scipy only (a test imports this package with torch unavailable). Each route returns
``(steps, extra_metadata)`` or raises :class:`~bfly_cli.solvers.RouteUnavailable`.

``bp_route``       B.P: :mod:`.bp_order` (column order discovery) + :mod:`.hierarchical` (twiddles,
                   built on the batched rank-one fit of :mod:`.rank_one`); with the rows permuted
                   too (``P_out B P_in``): :mod:`.row_pairing` (dense) and :mod:`.sparse_pairing`
                   (rows vanishing on half-blocks, e.g. the Haar matrix).
``rank2_route``    real matrices with rank-2 blocks (DCT/DST/Hartley): :mod:`.rank2_order` +
                   :mod:`.rank2_factor`; rows permuted too (``P_out Q P_in``): :mod:`.rank2_rows`.
``two_butterfly``  matrices diagonalized by a butterfly basis (circulants): :mod:`.eigenbasis`
                   reads the basis (with :mod:`.eigen_components` and :mod:`.block_algebra`),
                   :mod:`.two_sided` reads row and column bases (scalings),
                   :mod:`.cyclic_order` a cyclic row order (both sides shuffled),
                   :mod:`bfly_cli.chain_algebra` transposes a chain (shuffled rows),
                   :mod:`.butterfly_inverse` inverts a butterfly exactly.
"""
