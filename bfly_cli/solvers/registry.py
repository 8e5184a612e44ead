"""Every solver and every ``auto`` route, listed once.

``learn`` dispatches through :data:`SOLVERS`, ``--solver auto`` walks :data:`ROUTES` in order,
``bfly analyze`` names its verdict from the route's own ``verdict`` text, and the CLI help and
docs read the ``help`` strings. Adding a route means one :class:`Route` entry here plus its module;
nothing else keys on route names, so a route missing from a lookup table cannot break a command.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # the CLI reads this registry for its help text: no numpy at startup
    import numpy as np

    from ..factors import Step

Result = tuple["list[Step]", "dict[str, Any]"]


@dataclass(frozen=True)
class Memory:
    """Peak working memory of a solver beside the matrix it is given, in copies of that matrix:
    ``copies + per_level * log2(N)``. Measured (tracemalloc and peak RSS, N = 512-2048, on the
    worst inputs tried: a route that rejects a matrix late costs about what one that succeeds
    does) and rounded up, so a size that cannot fit is refused before the work rather than
    killed by the system after minutes of it (:func:`bfly_cli.sizes.check_working_memory`)."""

    copies: float
    per_level: float = 0.0

    def bytes_for(self, matrix_bytes: int, n: int) -> int:
        """Working bytes for an ``n x n`` matrix of ``matrix_bytes`` bytes."""
        return int((self.copies + self.per_level * max(n.bit_length() - 1, 1)) * matrix_bytes)

    def shortfall(self, matrix: np.ndarray) -> str | None:
        """None when the work on ``matrix`` fits in the memory available now, else why not."""
        from ..sizes import working_memory_shortfall

        return working_memory_shortfall(self.bytes_for(matrix.nbytes, matrix.shape[0]))


@dataclass(frozen=True)
class Route:
    """One structure ``--solver auto`` tries: its name (``auto_route``), the structure letters it
    produces, what ``analyze`` calls the structure (``title``) and its verdict when the route is
    exact, its working memory, and whether it is a closed-form structure (``exact_route``) or the
    approximation (which takes the budget)."""

    name: str
    structure: str
    title: str
    verdict: str
    solve: Callable[..., Result]
    memory: Memory
    exact_route: bool = True


@dataclass(frozen=True)
class Solver:
    """One ``--solver`` value: its name, one line of help, the callable ``learn`` runs and its
    working memory (``None`` for ``auto``, which checks each route's before running it)."""

    name: str
    help: str
    solve: Callable[..., Result]
    memory: Memory | None


def _bp(matrix: np.ndarray) -> Result:
    from .closed_form.bp_route import solve_bp

    return solve_bp(matrix)


def _real_rank2(matrix: np.ndarray) -> Result:
    from .closed_form.rank2_route import solve_real_rank2

    return solve_real_rank2(matrix, strict=True)  # a matrix with no rank-2 order is rejected early


def _two_butterfly(matrix: np.ndarray) -> Result:
    from .closed_form.two_butterfly import solve_two_butterfly

    return solve_two_butterfly(matrix)


def _approximate(matrix: np.ndarray, budget: int = 1) -> Result:
    from .approximate.route import solve_approximate

    return solve_approximate(matrix, budget)


# Measured peaks (copies of the input): bp 2.4 (a DFT with its rows shuffled), real_rank2 6.2 (a
# circulant, rejected late), two_butterfly 8.4 (a real circulant, N >= 2048: the route works in
# complex; 10.5 at N <= 1024, where the whole matrix is at most 8 MiB), approximate 9.3 (a complex
# matrix).
ROUTES: tuple[Route, ...] = (
    Route("bp", "BP / PBP", "B.P", "exact B.P", _bp, Memory(3)),
    Route("real_rank2", "QP", "B.P with rank-2 blocks", "exact with rank-2 blocks", _real_rank2, Memory(7)),
    Route("two_butterfly", "RBPBP", "two butterflies", "needs two butterflies", _two_butterfly, Memory(9)),
    Route("approximate", "BP / RBP", "an approximation", "approximate only", _approximate, Memory(10), exact_route=False),
)


def route(name: str) -> Route:
    """The registered route called ``name`` (KeyError with the known names otherwise)."""
    for item in ROUTES:
        if item.name == name:
            return item
    raise KeyError(f"unknown route {name!r}; routes: {', '.join(r.name for r in ROUTES)}")


def _hierarchical(matrix: np.ndarray) -> Result:
    """B.P with the permutation discovered (best effort: no exactness certificate)."""
    from ..factors import Step
    from .closed_form.bp_order import discover_permutation
    from .closed_form.hierarchical import factor_butterfly

    perm = discover_permutation(matrix)
    return [Step("permutation", perm), Step("butterfly", factor_butterfly(matrix, cols=perm))], {}


def _auto(matrix: np.ndarray, budget: int = 1, strict_budget: bool = False) -> Result:
    from .auto import solve_auto

    return solve_auto(matrix, budget=budget, strict_budget=strict_budget)


def _rank2_solver(matrix: np.ndarray) -> Result:
    from .closed_form.rank2_route import solve_real_rank2

    return solve_real_rank2(matrix)


def _gradient(matrix: np.ndarray, **options: Any) -> Result:
    from .gradient.learner import solve_gradient

    return solve_gradient(matrix, **options)


# Measured peaks: hierarchical 2.4 (a real random matrix), real_rank2 as its route; gradient 62
# copies of a complex DFT at N = 1024 (peak RSS growth with torch already loaded: torch keeps every
# stage's activations of the identity batch for the backward pass, so it grows with the stages).
SOLVERS: tuple[Solver, ...] = (
    Solver("hierarchical", "B.P only (closed form, column order discovered)", _hierarchical, Memory(3)),
    Solver("auto", "the most accurate of B.P, real rank-2 and two butterflies (either side permuted), "
                   "else the best approximation", _auto, None),
    Solver("real_rank2", "real matrices with rank-2 blocks (QP)", _rank2_solver, Memory(7)),
    Solver("gradient", "the paper's differentiable learner (BP/BPP/BPBP)", _gradient, Memory(8, per_level=7)),
)
SOLVER_NAMES: tuple[str, ...] = tuple(s.name for s in SOLVERS)


def solver(name: str) -> Solver:
    """The registered solver called ``name`` (KeyError otherwise)."""
    for item in SOLVERS:
        if item.name == name:
            return item
    raise KeyError(name)
