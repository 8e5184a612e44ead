"""The approximation route: the best butterfly product when no exact structure exists.

:mod:`.route` (``solve_approximate``): a closed-form initialization (plain or with the
orthonormalization sweep of :mod:`.orthonormal`), L-BFGS on the twiddles (:mod:`.twiddle_lbfgs`),
and, near an exact fit, the gradient family's refinement engine
(:func:`bfly_cli.solvers.gradient.refine.polish`) to float64 precision.
"""
