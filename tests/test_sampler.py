"""Negative sampling: never an interacted item, uniform over the rest, reproducible."""

import numpy as np
import pytest
import torch

from pipeline.errors import UserError
from pipeline.training.sampler import NegativeSampler, epoch_batches


def test_contains_matches_the_training_pairs():
    s = NegativeSampler(3, 4, np.array([0, 0, 2, 2]), np.array([1, 3, 0, 0]))
    users = torch.tensor([0, 0, 0, 0, 1, 2, 2])
    items = torch.tensor([0, 1, 2, 3, 1, 0, 3])
    assert s.contains(users, items).tolist() == [False, True, False, True, False, True, False]


def test_never_returns_an_interacted_item_and_is_uniform_over_the_rest():
    # user 0 has items {0, 1, 2} of 5, so only 3 and 4 are allowed, each with probability 1/2;
    # user 1 has nothing, so all 5 items, each 1/5.
    s = NegativeSampler(2, 5, np.array([0, 0, 0]), np.array([0, 1, 2]))
    gen = torch.Generator().manual_seed(0)
    n = 20000
    neg0 = s.sample(torch.zeros(n, dtype=torch.int64), gen)
    neg1 = s.sample(torch.ones(n, dtype=torch.int64), gen)
    c0 = np.bincount(neg0.numpy(), minlength=5)
    c1 = np.bincount(neg1.numpy(), minlength=5)
    assert c0[:3].sum() == 0
    # binomial std of a count is sqrt(n p (1-p)) <= 71 here; allow 5 std
    assert abs(c0[3] - n / 2) < 5 * 71
    assert np.all(np.abs(c1 - n / 5) < 5 * 57)


def test_a_user_with_one_free_item_always_gets_it():
    s = NegativeSampler(1, 6, np.zeros(5, np.int64), np.arange(5))
    neg = s.sample(torch.zeros(1000, dtype=torch.int64), torch.Generator().manual_seed(1))
    assert (neg == 5).all()


def test_same_generator_state_same_samples():
    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 50, 400), rng.integers(0, 30, 400)
    s = NegativeSampler(50, 30, users, items)
    batch = torch.from_numpy(users)
    a = s.sample(batch, torch.Generator().manual_seed(7))
    b = s.sample(batch, torch.Generator().manual_seed(7))
    c = s.sample(batch, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert not s.contains(batch, a).any()


def test_user_with_every_item_is_a_clear_error():
    with pytest.raises(UserError, match="user 1 .*all 3 items"):
        NegativeSampler(2, 3, np.array([1, 1, 1, 0]), np.array([0, 1, 2, 0]))


def test_epoch_batches_is_a_seeded_permutation():
    batches = epoch_batches(10, 4, torch.Generator().manual_seed(0))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(torch.cat(batches).tolist()) == list(range(10))
    again = epoch_batches(10, 4, torch.Generator().manual_seed(0))
    assert all(torch.equal(x, y) for x, y in zip(batches, again))


def test_the_rank_to_item_map_by_hand():
    # user 0 has items {1, 2, 5} of 7: its free items in order are 0, 3, 4, 6; a draw of rank r
    # (the float64 uniform u maps to r = floor(u * 4)) must give the r-th of them
    s = NegativeSampler(1, 7, np.array([0, 0, 0]), np.array([5, 1, 2]))
    users = torch.zeros(4, dtype=torch.int64)
    before = torch.searchsorted(s._gaps, users * 7 + torch.arange(4), right=True) - s._start[users]
    assert (torch.arange(4) + before).tolist() == [0, 3, 4, 6]
    counts = np.bincount(s.sample(torch.zeros(40000, dtype=torch.int64), torch.Generator().manual_seed(3)).numpy(), minlength=7)
    assert counts[[1, 2, 5]].sum() == 0 and np.all(np.abs(counts[[0, 3, 4, 6]] - 10000) < 5 * 87)
