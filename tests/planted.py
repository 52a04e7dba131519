"""A small synthetic TrainData with planted preference clusters, for model tests.

120 users and 80 items fall into 4 clusters. Each user rates 12 items of its own cluster high
(4-5) and 3 items of other clusters low (1-2), so both the interactions and their signs carry the
cluster. Per user, 2 interactions go to valid and 2 to test (seeded). Item features of two
modalities (``image`` 32-d, ``text`` 16-d) are the cluster's centre plus noise; the kNN lists are
each item's 10 most cosine-similar items (brute force in numpy). The PST thresholds are
delta_u = mean - 0.5 * std of the user's training ratings (nu = 0.5); the pseudo edges are, for
every fourth user, one pseudo-positive edge to an unseen item of its cluster and one
pseudo-negative edge to an unseen item of another cluster.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from pipeline.data import Interactions, SignedEdges, TrainData

N_USERS, N_ITEMS, N_CLUSTERS = 120, 80, 4
N_IN, N_OUT, N_VALID, N_TEST = 12, 3, 2, 2
KNN_K = 10


def _knn(features: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = features / np.linalg.norm(features, axis=1, keepdims=True)
    sim = x @ x.T
    np.fill_diagonal(sim, -np.inf)
    order = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    items = np.repeat(np.arange(len(x)), k)
    neighbors = order.reshape(-1)
    return items.astype(np.int64), neighbors.astype(np.int64), sim[items, neighbors].astype(np.float32)


@lru_cache(maxsize=None)
def planted_data(seed: int = 0) -> TrainData:
    """The planted-cluster dataset (cached: treat it as read-only)."""
    rng = np.random.default_rng(seed)
    user_cluster = rng.permutation(np.arange(N_USERS) % N_CLUSTERS)
    item_cluster = rng.permutation(np.arange(N_ITEMS) % N_CLUSTERS)
    by_cluster = [np.flatnonzero(item_cluster == c) for c in range(N_CLUSTERS)]

    rows: dict[str, list[tuple[int, int, float]]] = {"train": [], "valid": [], "test": []}
    seen: list[np.ndarray] = []
    for u in range(N_USERS):
        c = user_cluster[u]
        liked = rng.choice(by_cluster[c], N_IN, replace=False)
        others = np.flatnonzero(item_cluster != c)
        disliked = rng.choice(others, N_OUT, replace=False)
        items = np.concatenate([liked, disliked])
        ratings = np.concatenate([rng.integers(4, 6, N_IN), rng.integers(1, 3, N_OUT)]).astype(np.float32)
        order = rng.permutation(len(items))
        items, ratings = items[order], ratings[order]
        split = np.array(["valid"] * N_VALID + ["test"] * N_TEST + ["train"] * (len(items) - N_VALID - N_TEST))
        for i, r, s in zip(items, ratings, split):
            rows[str(s)].append((u, int(i), float(r)))
        seen.append(items)

    def interactions(name: str) -> Interactions:
        arr = np.array(rows[name], dtype=np.float64).reshape(-1, 3)
        return Interactions.from_arrays(arr[:, 0], arr[:, 1], arr[:, 2])

    train, valid, test = interactions("train"), interactions("valid"), interactions("test")

    features = {}
    for name, dim in (("image", 32), ("text", 16)):
        centres = rng.normal(size=(N_CLUSTERS, dim))
        features[name] = (centres[item_cluster] + 0.5 * rng.normal(size=(N_ITEMS, dim))).astype(np.float32)
    knn = {name: _knn(feat, KNN_K) for name, feat in features.items()}

    sums = np.bincount(train.user, weights=train.rating, minlength=N_USERS)
    counts = np.bincount(train.user, minlength=N_USERS)
    mean = sums / counts
    var = np.bincount(train.user, weights=(train.rating - mean[train.user]) ** 2, minlength=N_USERS) / counts
    thresholds = (mean - 0.5 * np.sqrt(var)).astype(np.float32)

    e_user, e_item, e_sign, e_weight = [], [], [], []
    for u in range(0, N_USERS, 4):
        c = user_cluster[u]
        unseen = np.setdiff1d(np.arange(N_ITEMS), seen[u])
        same = unseen[item_cluster[unseen] == c]
        other = unseen[item_cluster[unseen] != c]
        for item, sign, weight in ((same[0], 1, 0.9), (other[0], -1, 0.05)):
            e_user.append(u)
            e_item.append(int(item))
            e_sign.append(sign)
            e_weight.append(weight)
    pseudo = SignedEdges(
        np.asarray(e_user, np.int64),
        np.asarray(e_item, np.int64),
        np.asarray(e_sign, np.int8),
        np.ones(len(e_user), bool),
        np.asarray(e_weight, np.float32),
    )
    return TrainData(
        n_users=N_USERS,
        n_items=N_ITEMS,
        train=train,
        valid=valid,
        test=test,
        features=features,
        knn=knn,
        thresholds=thresholds,
        pseudo=pseudo,
        name="planted",
    )


def user_clusters(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(user cluster, item cluster) of :func:`planted_data` with the same seed."""
    rng = np.random.default_rng(seed)
    return rng.permutation(np.arange(N_USERS) % N_CLUSTERS), rng.permutation(np.arange(N_ITEMS) % N_CLUSTERS)
