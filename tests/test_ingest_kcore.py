"""k-core: hand-checked cases and a brute-force property test (maximal k-core, fixpoint)."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import UserError
from pipeline.ingest.kcore import kcore


def _edges(pairs):
    arr = np.array(pairs, dtype=np.int64)
    return arr[:, 0], arr[:, 1]


def test_pendant_user_removed_in_one_round():
    # a complete 2x2 block plus user 2 rated only item 0: user 2 has degree 1 < 2
    users, items = _edges([(0, 0), (0, 1), (1, 0), (1, 1), (2, 0)])
    res = kcore(users, items, 2)
    assert res.keep.tolist() == [True, True, True, True, False]
    assert res.rounds == [{"round": 1, "interactions": 4, "users": 2, "items": 2}]


def test_cascade_takes_three_rounds():
    # block u0,u1 x i0,i1 + chain u1-i2, u2-i2, u2-i3: i3 falls, then u2, then i2
    users, items = _edges([(0, 0), (0, 1), (1, 0), (1, 1), (1, 2), (2, 2), (2, 3)])
    res = kcore(users, items, 2)
    assert res.keep.tolist() == [True, True, True, True, False, False, False]
    assert res.rounds == [
        {"round": 1, "interactions": 6, "users": 3, "items": 3},
        {"round": 2, "interactions": 5, "users": 2, "items": 3},
        {"round": 3, "interactions": 4, "users": 2, "items": 2},
    ]


def test_already_a_core_needs_no_round_and_k1_keeps_all():
    users, items = _edges([(0, 0), (0, 1), (1, 0), (1, 1)])
    assert kcore(users, items, 2).keep.all() and kcore(users, items, 2).rounds == []
    users, items = _edges([(0, 0), (1, 1)])
    assert kcore(users, items, 1).keep.all()


def test_empty_result_names_the_rounds():
    # a path u0-i0, u0-i1, u1-i1, u1-i2: the ends fall in round 1, the rest in round 2
    users, items = _edges([(0, 0), (0, 1), (1, 1), (1, 2)])
    with pytest.raises(UserError) as err:
        kcore(users, items, 2, source="toy")
    msg = str(err.value)
    assert msg.startswith("toy: nothing is left after the 2-core filter (from 4 interactions;")
    assert "round 1: 2 interactions, 2 users, 1 items; round 2: 0 interactions, 0 users, 0 items" in msg


def _is_core(edges: list[tuple[int, int]], k: int) -> bool:
    deg_u: dict[int, int] = {}
    deg_i: dict[int, int] = {}
    for u, i in edges:
        deg_u[u] = deg_u.get(u, 0) + 1
        deg_i[i] = deg_i.get(i, 0) + 1
    return all(d >= k for d in deg_u.values()) and all(d >= k for d in deg_i.values())


def _brute_force_core(edges: list[tuple[int, int]], k: int) -> set[int]:
    """Indices in the union of every edge subset that is a k-core (= the maximal k-core)."""
    union: set[int] = set()
    for size in range(len(edges), 0, -1):
        for subset in combinations(range(len(edges)), size):
            if not set(subset) <= union and _is_core([edges[j] for j in subset], k):
                union |= set(subset)
    return union


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=11, unique=True),
    st.integers(1, 3),
)
def test_result_is_the_maximal_core_and_a_fixpoint(pairs, k):
    users, items = _edges(pairs)
    try:
        keep = kcore(users, items, k).keep
    except UserError:
        keep = np.zeros(len(pairs), dtype=bool)
    kept = [pairs[j] for j in np.flatnonzero(keep)]
    assert _is_core(kept, k)  # a k-core
    assert set(np.flatnonzero(keep).tolist()) == _brute_force_core(pairs, k)  # keeps all a k-core can keep
    if kept:  # a fixpoint: filtering again removes nothing
        assert kcore(*_edges(kept), k).keep.all()
