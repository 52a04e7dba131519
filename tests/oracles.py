"""Brute-force references the tests compare the pipeline with: plain Python, no pipeline code."""

from __future__ import annotations


def k_core(pairs: set[tuple[str, str]], k: int = 5) -> set[tuple[str, str]]:
    """Distinct (user, item) pairs with every user and item of fewer than ``k`` pairs dropped, until
    none is left to drop (the iterated k-core)."""
    while True:
        deg_u: dict[str, int] = {}
        deg_i: dict[str, int] = {}
        for u, i in pairs:
            deg_u[u] = deg_u.get(u, 0) + 1
            deg_i[i] = deg_i.get(i, 0) + 1
        kept = {(u, i) for u, i in pairs if deg_u[u] >= k and deg_i[i] >= k}
        if kept == pairs:
            return pairs
        pairs = kept
