"""Sign thresholds (eq. 12-14) and edge signs on hand-computed users."""

import math

import numpy as np
import pytest

from pipeline.errors import UserError
from pipeline.graph.pst import edge_signs, global_thresholds, personalised_thresholds, user_rating_stats

# user 0: all 5; user 1: 1..5; user 2: {2, 4}; user 3: all 3; user 4: no ratings
USER = np.array([0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 3, 3])
RATING = np.array([5, 5, 5, 1, 2, 3, 4, 5, 2, 4, 3, 3], np.float32)


def signs(nu: float) -> list[int]:
    _, mu, eps = user_rating_stats(USER, RATING, 5)
    return edge_signs(RATING, personalised_thresholds(mu, eps, nu)[USER]).tolist()


def test_stats_mean_and_population_std():
    count, mu, eps = user_rating_stats(USER, RATING, 5)
    assert count.tolist() == [3, 5, 2, 2, 0]
    np.testing.assert_allclose(mu[:4], [5, 3, 3, 3])
    assert eps[0] == 0.0 and eps[3] == 0.0  # exactly zero for equal ratings
    np.testing.assert_allclose(eps[1:3], [math.sqrt(2), 1.0])  # population, not sample (ddof=0)
    assert np.isnan(mu[4]) and np.isnan(eps[4])


def test_thresholds_hand_values():
    _, mu, eps = user_rating_stats(USER, RATING, 5)
    d = personalised_thresholds(mu, eps, 0.5)
    assert d.dtype == np.float32
    np.testing.assert_allclose(d[:4], [2.5, 1.5 - math.sqrt(2) / 2, 1.0, 1.5], rtol=1e-6)
    d8 = personalised_thresholds(mu, eps, 0.8)
    np.testing.assert_allclose(d8[:4], [4.0, 2.4 - 0.2 * math.sqrt(2), 2.2, 2.4], rtol=1e-6)


def test_signs_nu_half():
    # all-5 user: delta 2.5 -> all positive; user 1: delta 0.79 -> all positive; user 2: delta 1
    assert signs(0.5) == [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]


def test_signs_nu_08():
    # user 0: 4.0 -> 5s positive; user 1: 2.117 -> 1, 2 negative; user 2: 2.2 -> 2 negative; user 3: 2.4
    assert signs(0.8) == [1, 1, 1, -1, -1, 1, 1, 1, -1, 1, 1, 1]


def test_signs_nu_one_end_all_equal_users_become_negative():
    # delta_u = mu_u: a rating equal to the threshold is negative, so all-equal users lose every positive
    assert signs(1.0) == [-1, -1, -1, -1, -1, -1, 1, 1, -1, 1, -1, -1]


def test_signs_nu_zero_end_all_positive():
    _, mu, eps = user_rating_stats(USER, RATING, 5)
    d = personalised_thresholds(mu, eps, 0.0)
    np.testing.assert_allclose(d[:4], [0.0, -math.sqrt(2), -1.0, 0.0], rtol=1e-6)
    assert signs(0.0) == [1] * 12


def test_global_threshold_three():
    d = global_thresholds(5, 3.0)
    assert edge_signs(RATING, d[USER]).tolist() == [1, 1, 1, -1, -1, -1, 1, 1, -1, 1, -1, -1]


def test_nu_out_of_range():
    with pytest.raises(UserError, match="pst.nu"):
        personalised_thresholds(np.array([3.0]), np.array([1.0]), 1.5)
