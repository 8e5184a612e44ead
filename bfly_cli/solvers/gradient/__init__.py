"""The seed paper's differentiable learner, made reliable (``--solver gradient``).

:mod:`.learner`        ``solve_gradient``: restarts, the route per restart, the final polish, the log.
:mod:`.options`        every knob (``GradientOptions``) and its validation.
:mod:`.relaxed`        the paper's phase: Adam on relaxed permutations, stopped once rounding settles.
:mod:`.restart`        what a restart's routes share: its context and a route's result.
:mod:`.order_route`    ``BP``/``BPP``: repair the rounded order, fit its twiddles, exclude failed orders.
:mod:`.choice_repair`  repairs rounded permutation choices by the closed-form block-rank score.
:mod:`.rank2_fit`      the real rank-2 model from random stages (L-BFGS, ALS, LM).
:mod:`.rank2_als`      alternating least squares and normal equations for the real rank-2 model.
:mod:`.bpbp_route`     ``BPBP``: the outside-in fit, else the flip search.
:mod:`.bpbp_split`     the outside-in BPBP fit (pair-form subspaces, recursive splits).
:mod:`.flip_search`    rounding plus single-choice flips scored by short fits (no closed-form score).
:mod:`.refine`         the float64 L-BFGS / Levenberg-Marquardt engine: :func:`.refine.refine_steps`
                       for this family, :func:`.refine.polish` for :mod:`bfly_cli.solvers.approximate`.
"""
