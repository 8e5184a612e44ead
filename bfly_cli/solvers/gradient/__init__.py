"""The seed paper's differentiable learner, made reliable (``--solver gradient``).

:mod:`.learner`        restarts, Adam on relaxed permutations, rounding, the route per restart.
:mod:`.choice_repair`  repairs rounded permutation choices by the closed-form block-rank score.
:mod:`.rank2_als`      alternating least squares for the real rank-2 model.
:mod:`.bpbp_split`     the outside-in BPBP fit (pair-form subspaces, recursive splits).
:mod:`.refine`         the float64 L-BFGS / Levenberg-Marquardt engine, also used by
                       :mod:`bfly_cli.solvers.approximate` through :func:`.refine.polish`.
"""
