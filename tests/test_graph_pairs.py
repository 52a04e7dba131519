"""PairIndex: sorted (user, item) keys, membership and value lookup on hand-checked pairs."""

import numpy as np
import pytest
import torch

from pipeline.graph.pairs import PairIndex


def test_contains_and_lookup_on_a_hand_case():
    # n_items = 4; pairs (user, item, value), given unsorted and with (2, 0) twice: first value kept
    users = np.array([2, 0, 2, 0, 2])
    items = np.array([0, 3, 0, 1, 2])
    values = np.array([1.0, -1.0, 5.0, 0.5, -2.0], np.float32)
    index = PairIndex(users, items, 4, values=values)
    assert len(index) == 4
    assert index.keys.tolist() == [1, 3, 8, 10]  # 0*4+1, 0*4+3, 2*4+0, 2*4+2: sorted, unique
    q_users = torch.tensor([0, 0, 0, 0, 1, 2, 2, 2, 2])
    q_items = torch.tensor([0, 1, 2, 3, 1, 0, 1, 2, 3])
    expected = [False, True, False, True, False, True, False, True, False]
    assert index.contains(q_users, q_items).tolist() == expected
    found, vals = index.lookup(q_users, q_items)
    assert found.tolist() == expected
    assert vals.dtype == torch.float32
    assert vals.tolist() == [0.0, 0.5, 0.0, -1.0, 0.0, 1.0, 0.0, -2.0, 0.0]  # 0 where not indexed
    assert index.user_degree(4).tolist() == [2, 0, 2, 0]


def test_queries_past_the_last_key_and_broadcasting():
    index = PairIndex(np.array([0]), np.array([1]), 3, values=np.array([7], np.int64))
    assert index.contains(torch.tensor([2, 0]), torch.tensor([2, 1])).tolist() == [False, True]  # key 8 > every key
    found, vals = index.lookup(torch.tensor([[0], [1]]), torch.tensor([0, 1, 2]))  # [2, 1] against [3]
    assert found.tolist() == [[False, True, False], [False, False, False]]
    assert vals.tolist() == [[0, 7, 0], [0, 0, 0]]


def test_empty_index():
    index = PairIndex(np.zeros(0, np.int64), np.zeros(0, np.int64), 5, values=np.zeros(0, np.float32))
    assert len(index) == 0
    users, items = torch.tensor([0, 1, 2]), torch.tensor([4, 0, 2])
    assert index.contains(users, items).tolist() == [False, False, False]
    found, vals = index.lookup(users, items)
    assert found.tolist() == [False, False, False] and vals.tolist() == [0.0, 0.0, 0.0]
    assert vals.dtype == torch.float32
    assert index.user_degree(3).tolist() == [0, 0, 0]


def test_lookup_needs_values():
    index = PairIndex(np.array([0]), np.array([0]), 2)
    assert index.contains(torch.tensor([0]), torch.tensor([0])).tolist() == [True]
    with pytest.raises(ValueError, match="without values"):
        index.lookup(torch.tensor([0]), torch.tensor([0]))
