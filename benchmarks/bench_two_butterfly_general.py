"""The stretch goal of #12: how far the closed-form side recovers the general two-butterfly class.

The file format writes ``RBPBP`` for any ``B2 R B1 P``, so users will assume bfly recovers what it
can write. This prints, for ``T = B2 R B1 R`` (R the bit reversal, B1 and B2 random butterflies)
and each N, what ``bfly_cli.factorize`` (the default solver of ``bfly learn``) returns: structure,
rel_error = ||M - T||_F / ||T||_F, the exactness wording, the solver's seconds, and cond(T).

The target is built here, by another road than bfly's own code: each butterfly is log2 N stages
of random 2x2 blocks applied with numpy reshapes to the columns of the identity. Two block laws:

* ``unitary``   each 2x2 block a random unitary (QR of a complex Gaussian): cond(T) = 1, so any
  error above rounding is the solver's;
* ``gaussian``  each block's four entries complex Gaussian: cond(T) grows like 10^(N-dependent)
  (4e12 at N = 1024), so a forward error far above 1e-15 can be the matrix's conditioning and not
  the solver (the ``rel / (cond eps)`` column puts the two side by side). T itself is not the
  limit: the same product formed in extended precision (``np.clongdouble``) differs from the
  float64 T by 1.8e-16 to 3.0e-16 at N = 64..1024, so the gap above that is the solver's.

Usage::

    python benchmarks/bench_two_butterfly_general.py                        # N = 64..1024, both laws
    python benchmarks/bench_two_butterfly_general.py --sizes 4096 --laws unitary   # ~20 s solve
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

LAWS = ("unitary", "gaussian")
COND_LIMIT = 2048  # cond(T) is an N^3 SVD: skipped above this size


def random_blocks(count: int, law: str, rng: np.random.Generator) -> np.ndarray:
    """``count`` random 2x2 complex blocks of the given law."""
    z = rng.standard_normal((count, 2, 2)) + 1j * rng.standard_normal((count, 2, 2))
    return np.linalg.qr(z)[0] if law == "unitary" else z


def apply_random_butterfly(x: np.ndarray, law: str, rng: np.random.Generator) -> np.ndarray:
    """``B x`` for a fresh random butterfly B (strides 1, 2, ..., N/2, as bfly's stage order)."""
    n = x.shape[0]
    s = 1
    while s < n:
        b = random_blocks(n // 2, law, rng).reshape(n // (2 * s), s, 2, 2)
        v = x.reshape(n // (2 * s), 2, s, -1)
        top = b[:, :, 0, 0, None] * v[:, 0] + b[:, :, 0, 1, None] * v[:, 1]
        bottom = b[:, :, 1, 0, None] * v[:, 0] + b[:, :, 1, 1, None] * v[:, 1]
        x = np.stack([top, bottom], axis=1).reshape(n, -1)
        s *= 2
    return x


def bit_reversal(n: int) -> np.ndarray:
    bits = n.bit_length() - 1
    return np.array([int(format(i, f"0{bits}b")[::-1], 2) if bits else 0 for i in range(n)])


def target(n: int, law: str, seed: int) -> np.ndarray:
    """``B2 R B1 R``, scaled to ||T||_F = sqrt(N) (the size of a unitary matrix)."""
    rng = np.random.default_rng(seed)
    r = bit_reversal(n)
    t = np.eye(n, dtype=complex)[r]
    t = apply_random_butterfly(t, law, rng)[r]
    t = apply_random_butterfly(t, law, rng)
    return t * (np.sqrt(n) / np.linalg.norm(t))


def measure(n: int, law: str, seed: int) -> dict:
    import bfly_cli

    t = target(n, law, seed)
    start = time.perf_counter()
    factors = bfly_cli.factorize(t)
    seconds = time.perf_counter() - start
    m = factors.apply_reference(np.eye(n)).T
    rel = float(np.linalg.norm(m - t) / np.linalg.norm(t))
    cond = float(np.linalg.cond(t)) if n <= COND_LIMIT else None
    return {"n": n, "law": law, "seed": seed, "structure": factors.meta.get("structure"),
            "exactness": factors.meta.get("exactness"), "rel_error": rel, "seconds": seconds, "cond": cond}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="64,256,1024", help="N values (powers of two)")
    p.add_argument("--laws", default=",".join(LAWS), help="block laws: unitary, gaussian")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON document instead of the table")
    args = p.parse_args()
    rows = [measure(int(n), law, args.seed + int(n)) for law in args.laws.split(",") for n in args.sizes.split(",")]
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    print("| law | N | structure | rel_error | exactness | seconds | cond(T) | rel / (cond eps) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        cond = "-" if r["cond"] is None else f"{r['cond']:.1e}"
        ratio = "-" if r["cond"] is None else f"{r['rel_error'] / (r['cond'] * np.finfo(float).eps):.1e}"
        print(f"| {r['law']} | {r['n']} | {r['structure']} | {r['rel_error']:.2e} | {r['exactness']} "
              f"| {r['seconds']:.1f} | {cond} | {ratio} |")


if __name__ == "__main__":
    main()
