"""Splits: MMRec's per-user rule on hand cases, seed reproducibility, the temporal 8:1:1 split."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.errors import UserError
from pipeline.ingest.split import mmrec_sizes, random_split, split_codes, temporal_split

# n -> (train, valid, test): n < 10 gives n-2/1/1; else int(0.2 n) held out, floor half valid
HAND = {5: (3, 1, 1), 9: (7, 1, 1), 10: (8, 1, 1), 15: (12, 1, 2), 23: (19, 2, 2)}


def test_sizes_by_hand():
    n = np.array(list(HAND))
    train, valid, test = mmrec_sizes(n)
    assert list(zip(train.tolist(), valid.tolist(), test.tolist())) == list(HAND.values())


def test_tiny_users_keep_everything_in_train():
    train, valid, test = mmrec_sizes(np.array([1, 2, 3, 4]))
    assert train.tolist() == [1, 2, 1, 2] and valid.tolist() == [0, 0, 1, 1] and test.tolist() == [0, 0, 1, 1]


def _users(sizes):
    # users interleaved (not sorted) so the split must not rely on row order
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(len(sizes)), sizes)
    return users[rng.permutation(users.size)]


def test_random_split_counts_per_user():
    sizes = list(HAND)
    users = _users(sizes)
    codes = random_split(users, seed=999)
    for u, n in enumerate(sizes):
        mine = codes[users == u]
        assert (int((mine == 0).sum()), int((mine == 1).sum()), int((mine == 2).sum())) == HAND[n]


def test_random_split_is_the_seeded_permutation():
    """Independent recomputation: per user, rows in the order default_rng(seed).permutation visits them."""
    users = _users([5, 9, 10, 15, 23, 7])
    seed = 42
    codes = random_split(users, seed)
    key = np.argsort(np.random.default_rng(seed).permutation(users.size))  # key[j]: when row j is visited
    for u in np.unique(users):
        rows = [j for j in sorted(np.flatnonzero(users == u), key=lambda j: key[j])]
        n_train, n_valid, _ = (int(x[0]) for x in mmrec_sizes(np.array([len(rows)])))
        expected = [0] * n_train + [1] * n_valid + [2] * (len(rows) - n_train - n_valid)
        assert codes[rows].tolist() == expected


def test_seed_reproduces_and_another_seed_differs():
    users = _users([23] * 20)
    a, b, c = random_split(users, 7), random_split(users, 7), random_split(users, 8)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.bincount(a).tolist() == np.bincount(c).tolist() == [19 * 20, 2 * 20, 2 * 20]


def test_temporal_split_with_ties():
    # N = 10: rows ranked by (timestamp, user, item); 8 train, 1 valid, 1 test
    ts = np.array([5, 1, 9, 9, 3, 7, 2, 9, 4, 6])
    users = np.array([0, 0, 2, 1, 1, 0, 1, 1, 2, 2])
    items = np.array([0, 1, 2, 3, 4, 5, 6, 2, 0, 1])
    codes = temporal_split(ts, users, items)
    # the three rows at t = 9 are ordered (user 1, item 2) < (user 1, item 3) < (user 2, item 2)
    assert codes.tolist() == [0, 0, 2, 1, 0, 0, 0, 0, 0, 0]


def test_unknown_split_method():
    with pytest.raises(UserError, match="ingest.split must be one of"):
        split_codes("by_magic", np.zeros(3), np.zeros(3), np.zeros(3), 0)

