"""Sign thresholds: the global delta of SGA (§3, §4.1) and personalised thresholds (PST, eq. 12-14).

An observed training edge (u, i, r) is positive iff r > delta_u and negative iff r <= delta_u
(§3: w_ui - delta > 0 is positive). Without PST, delta_u = delta for every user (default 3, so
ratings 1-3 are negative). With PST,

    delta_u = nu * mu_u - (1 - nu) * eps_u                                     (eq. 14)

where mu_u and eps_u are the mean and the *population* standard deviation of u's training
ratings (eq. 13; eq. 12's mask M_ui = [R_ui > 0] is "u rated i in training", ratings are
positive by contract, see :func:`user_rating_stats`).

Decisions and their consequences, all deliberate:

* Only training ratings are used (the caller passes the train split only).
* The threshold is rounded to float32 *before* the comparison, so the signs are exactly those
  that ``thresholds.parquet`` (float32) reproduces.
* A user whose ratings are all equal has eps_u = 0, hence delta_u = nu * mu_u. With nu = 0.5 an
  all-5 user gets delta 2.5 and all their edges are positive; with nu = 1, delta_u = mu_u equals
  every rating and, because a rating equal to the threshold is negative, *all* their edges are
  negative. More generally nu = 1 makes every rating at or below the user's mean negative, and
  nu = 0 gives delta_u = -eps_u <= 0 < every rating, i.e. no negative edge at all.
* Users without a positive (or negative) edge are kept as they are and counted by the caller.
"""

from __future__ import annotations

import numpy as np

from pipeline.errors import UserError


def user_rating_stats(user: np.ndarray, rating: np.ndarray, n_users: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-user count, mean mu_u and population standard deviation eps_u of the ratings (eq. 12-13).

    Returns float64 arrays of length ``n_users`` (count as int64); users without ratings get
    mu = eps = NaN. Two-pass, so a user with equal ratings has eps exactly 0.
    """
    user = np.asarray(user, dtype=np.int64)
    r = np.asarray(rating, dtype=np.float64)
    count = np.bincount(user, minlength=n_users)
    with np.errstate(invalid="ignore", divide="ignore"):
        mu = np.bincount(user, weights=r, minlength=n_users) / count  # eq. 13 (mean)
        dev = r - mu[user]
        eps = np.sqrt(np.bincount(user, weights=dev * dev, minlength=n_users) / count)  # eq. 13 (population std)
    return count, mu, eps


def personalised_thresholds(mu: np.ndarray, eps: np.ndarray, nu: float) -> np.ndarray:
    """delta_u = nu * mu_u - (1 - nu) * eps_u, rounded to float32."""
    if not 0.0 <= float(nu) <= 1.0:
        raise UserError(f"params.yaml: pst.nu = {nu} is outside [0, 1] (eq. 14 weighs mean and spread)")
    return (nu * np.asarray(mu, np.float64) - (1.0 - nu) * np.asarray(eps, np.float64)).astype(np.float32)  # eq. 14


def global_thresholds(n_users: int, delta: float) -> np.ndarray:
    """The fixed threshold of SGA without PST (§4.1), one float32 per user."""
    return np.full(n_users, delta, dtype=np.float32)


def edge_signs(rating: np.ndarray, threshold: np.ndarray) -> np.ndarray:
    """+1 where rating > threshold, else -1 (int8); ``threshold`` is per edge (§3)."""
    rating = np.asarray(rating, dtype=np.float32)
    threshold = np.asarray(threshold, dtype=np.float32)
    return np.where(rating > threshold, 1, -1).astype(np.int8)
