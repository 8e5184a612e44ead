"""Closed-form repair of the relaxation's rounded permutations (the gradient solver's stage 2).

The paper trusted the rounded relaxation; a single wrong choice among the 3 (L-1) per
permutation then ruins the trial. Here every candidate hard permutation is scored *exactly* and
cheaply, without fitting any twiddle:

* For a column order ``perm`` (``B = T[:, perm]``) and a split level ``l``, the hierarchical
  two-factor split cuts B into N blocks (rows with the same low ``l`` bits, columns in the same
  aligned chunk of ``2**l`` positions). B is a butterfly only if every block has rank 1, and
  ``Re`` of a complex butterfly (a sum of two butterflies with the same order) only if every
  block has rank <= 2. The *tail energy* (singular values beyond that rank, squared, summed, over
  ``||T||^2``) at every level is the score: zero for a right order, O(N^2)-ish to compute
  (:func:`~bfly_cli.solvers.numerics.sketched_tail_energy`).
* A block's rank ignores the order of the columns inside its chunk, so the score at split level
  ``l`` depends only on the partition of positions into chunks of ``2**l``. In the paper's family,
  the choices at block size ``k`` fix the chunks of size ``k/2`` given the larger ones, and the
  two "reverse a half" choices only swap chunks (with untied twiddles a pure gauge). So a
  permutation is searched *level by level*, top down, as a beam over chunk partitions, each level
  adding the one split level it decides to the score. For one permutation this is exhaustive in
  effect (2 distinct refinements per level).
* Two permutations in a row (``BPP``: ``B = T[:, pa[pb]]``) are searched by coordinate moves on
  the first-applied one (all 8 settings of one level's three choices), each candidate scored by
  the exact level search of the second.

The search starts from the rounded relaxation: a right prefix of levels is kept, so the search
only repairs what the relaxation got wrong; when that fails it widens. It sees only the matrix.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import numpy as np

from ...layout import permutation_from_choices
from ..numerics import sketched_tail_energy

EXACT = 1e-12  # relative tail energy at or below this is rounding noise (~1e-16 a level): the order is right
_SETTINGS = [np.array(bits, dtype=bool) for bits in product((False, True), repeat=3)]


@dataclass(frozen=True)
class SearchResult:
    """Choices per learnable permutation (application order), their score, candidates scored."""

    choices: list[np.ndarray]
    score: float
    evaluated: int


def level_scores(matrix: np.ndarray, perm: np.ndarray, rank: int) -> np.ndarray:
    """Relative tail energies of ``matrix[:, perm]`` at split levels ``L-1, L-2, .., 1`` (top first)."""
    n = matrix.shape[0]
    ordered = matrix[:, perm]
    total = float(np.sum(np.abs(matrix) ** 2)) or 1.0
    levels = n.bit_length() - 1
    return np.array([sketched_tail_energy(ordered, lev, rank) / total for lev in range(levels - 1, 0, -1)])


def score(matrix: np.ndarray, perm: np.ndarray, rank: int) -> float:
    """Total relative tail energy of ``matrix[:, perm]`` over all split levels."""
    return float(level_scores(matrix, perm, rank).sum())


def search_single(matrix: np.ndarray, start: np.ndarray, rank: int, beam: int = 4,
                  exclude: frozenset[bytes] = frozenset()) -> SearchResult:
    """Best choices for one permutation (``B = matrix[:, perm]``), repairing ``start``.

    Levels of ``start`` are kept while their split scores are exact; from the first bad level
    down a beam search over the 8 settings per level runs. If the repaired order is still not
    exact, the beam restarts from the top level (nothing of ``start`` kept). Orders whose
    :func:`order_key` is in ``exclude`` (their fit failed before) count as not exact.
    """
    n = matrix.shape[0]
    start = np.asarray(start, dtype=bool).reshape(-1, 3)
    per_level = level_scores(matrix, permutation_from_choices(n, start), rank)
    evaluated = 1
    good = 0
    while good < len(per_level) and per_level[good] <= EXACT:
        good += 1
    if good == len(per_level) and order_key(permutation_from_choices(n, start)) not in exclude:
        return SearchResult([start], float(per_level.sum()), evaluated)
    good = min(good, len(per_level) - 1)
    result = _beam(matrix, start, good, rank, beam, exclude)
    if result.score > EXACT and good > 0:
        wide = _beam(matrix, start, 0, rank, beam, exclude)
        result = wide if wide.score < result.score else result
        evaluated += wide.evaluated
    return SearchResult(result.choices, result.score, evaluated + result.evaluated)


def _beam(matrix: np.ndarray, start: np.ndarray, first: int, rank: int, width: int,
          exclude: frozenset[bytes] = frozenset()) -> SearchResult:
    """Beam over levels ``first ..``: each keeps the ``width`` lowest scores, one per chunk partition.

    The levels of ``start`` above ``first`` are fixed; ``start``'s own setting of each level is
    tried first, so on ties the relaxation's choice wins. Scores are cumulative over the split
    levels decided so far (those below a level are not affected by later choices).
    """
    n = matrix.shape[0]
    levels = n.bit_length() - 1
    total = float(np.sum(np.abs(matrix) ** 2)) or 1.0
    prefix_score = float(level_scores(matrix, permutation_from_choices(n, start), rank)[:first].sum())
    beam = [(prefix_score, start.copy())]
    evaluated = 0
    for depth in range(first, levels - 1):
        split = levels - 1 - depth
        seen: dict[bytes, tuple[float, np.ndarray]] = {}
        for base_score, base in beam:
            for setting in _ordered_settings(start[depth]):
                cand = base.copy()
                cand[depth] = setting
                cand[depth + 1:] = False
                perm = permutation_from_choices(n, cand)
                key = _partition_key(perm, 1 << split)
                if key in seen:
                    continue
                evaluated += 1
                value = base_score + sketched_tail_energy(matrix[:, perm], split, rank) / total
                seen[key] = (value, cand)
        ranked = sorted(seen.values(), key=lambda item: item[0])
        if depth == levels - 2 and exclude:  # last level: excluded orders go behind every other
            ranked.sort(key=lambda item: (order_key(permutation_from_choices(n, item[1])) in exclude, item[0]))
            ranked = [(v if order_key(permutation_from_choices(n, c)) not in exclude else max(v, 1.0), c)
                      for v, c in ranked]
        beam = [(value, _restore_tail(cand, start, depth)) for value, cand in ranked[:width]]
    best_score, best = beam[0]
    return SearchResult([best], best_score, evaluated)


def _ordered_settings(own: np.ndarray) -> list[np.ndarray]:
    """The 8 settings of one level, the given one first (ties keep the relaxation's choice)."""
    own = np.asarray(own, dtype=bool)
    return [own.copy()] + [s for s in _SETTINGS if not np.array_equal(s, own)]


def _restore_tail(cand: np.ndarray, start: np.ndarray, depth: int) -> np.ndarray:
    """``cand`` with the levels below ``depth`` taken back from ``start`` (the next beam step resets one)."""
    out = cand.copy()
    out[depth + 1:] = start[depth + 1:]
    return out


def order_key(perm: np.ndarray) -> bytes:
    """Key of an order up to the butterfly gauge: its chunk partitions at every split level.

    Two orders with the same key have the same score and the same butterflies (up to twiddle
    gauge), so a failed fit of one rules out all of them.
    """
    n = len(perm)
    return b"".join(_partition_key(perm, 1 << lev) for lev in range(1, n.bit_length() - 1))


def _partition_key(perm: np.ndarray, chunk: int) -> bytes:
    """A hashable key of the partition of columns into aligned chunks (order inside and of chunks ignored)."""
    groups = np.sort(np.asarray(perm).reshape(-1, chunk), axis=1)
    groups = groups[np.argsort(groups[:, 0])]
    return groups.tobytes()


def search_pair(matrix: np.ndarray, start_a: np.ndarray, start_b: np.ndarray, rank: int, beam: int = 4,
                rounds: int | None = None, exclude: frozenset[bytes] = frozenset()) -> SearchResult:
    """Best choices for two permutations (``pa`` applied first, then ``pb``: ``B = matrix[:, pa[pb]]``).

    ``pb`` is found by :func:`search_single` on ``matrix[:, pa]`` for every ``pa`` tried. ``pa``
    moves one level at a time, best move first, from ``start_a`` while the score drops (at most
    ``rounds`` moves, default 2 (L-1)). Of a level's 8 settings only 4 differ for the score:
    reversing *both* halves of every block is a translation of the column index bits, which
    moves whole chunks and changes no block's rank. ``exclude``: merged orders (their
    :func:`order_key`) that count as not exact.
    """
    n = matrix.shape[0]
    start_a = np.asarray(start_a, dtype=bool).reshape(-1, 3)
    rounds = 2 * start_a.shape[0] if rounds is None else rounds
    cache: dict[bytes, SearchResult] = {}

    def inner(choice_a: np.ndarray, hint_b: np.ndarray) -> SearchResult:
        key = _pa_class(choice_a).tobytes()
        if key not in cache:
            pa = permutation_from_choices(n, choice_a)
            shifted = frozenset(_relabel_excluded(exclude, pa))
            cache[key] = search_single(matrix[:, pa], hint_b, rank, beam, shifted)
        return cache[key]

    cur = inner(start_a, start_b)
    best_a, best_b, best_score = start_a, cur.choices[0], cur.score
    for _ in range(rounds):
        if best_score <= EXACT:
            break
        move = _best_move(best_a, best_b, inner)
        if move is None or move[2] >= best_score * (1 - 1e-9):
            break
        best_a, best_b, best_score = move
    evaluated = sum(r.evaluated for r in cache.values())
    return SearchResult([best_a, best_b], best_score, evaluated)


def _best_move(choice_a: np.ndarray, hint_b: np.ndarray, inner) -> tuple[np.ndarray, np.ndarray, float] | None:
    """The one-level change of ``choice_a`` (top level first) whose best ``pb`` scores lowest."""
    move = None
    own = _pa_class(choice_a)
    for depth in range(choice_a.shape[0]):
        for setting in _PA_SETTINGS:
            if np.array_equal(setting[[0, 1]], own[depth]):
                continue
            cand = choice_a.copy()
            cand[depth] = setting
            res = inner(cand, hint_b)
            if move is None or res.score < move[2]:
                move = (cand, res.choices[0], res.score)
            if res.score <= EXACT:
                return move
    return move


_PA_SETTINGS = [np.array(bits, dtype=bool) for bits in ((0, 0, 0), (0, 1, 0), (1, 0, 0), (1, 1, 0))]


def _pa_class(choices: np.ndarray) -> np.ndarray:
    """Per level (separate, reverse one half only): what of a level matters up to translations."""
    choices = np.asarray(choices, dtype=bool)
    return np.stack([choices[:, 0], choices[:, 1] ^ choices[:, 2]], axis=1)


def _relabel_excluded(exclude: frozenset[bytes], pa: np.ndarray) -> set[bytes]:
    """Excluded merged-order keys rewritten in the column labels of ``matrix[:, pa]``.

    The inner search sees column ``j`` of ``matrix[:, pa]``, which is column ``pa[j]`` of the
    matrix, so a merged order ``pa[pb]`` is excluded when ``pb`` has the key of the merged one with
    every label ``c`` replaced by ``pa^-1[c]``.
    """
    if not exclude:
        return set()
    inverse = np.argsort(pa)
    n = len(pa)
    out = set()
    for key in exclude:
        labels = np.frombuffer(key, dtype=np.int64).copy()
        out.add(order_key_from_labels(inverse[labels], n))
    return out


def order_key_from_labels(labels: np.ndarray, n: int) -> bytes:
    """:func:`order_key` recomputed after relabeling (the key is a list of sorted groups)."""
    out = []
    for lev, part in enumerate(np.split(labels, n.bit_length() - 2)):
        groups = np.sort(part.reshape(-1, 1 << (lev + 1)), axis=1)
        out.append(groups[np.argsort(groups[:, 0])].tobytes())
    return b"".join(out)
