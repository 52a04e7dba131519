"""The signed training graph: observed edges signed by thresholds (PST) plus pseudo edges (APFI).

:func:`build_signed_graph` turns the *training* interactions (rows with split == "train" only;
validation and test never reach the graph) into the tables of ``data/<ds>/graph``:

* ``thresholds`` (PST): mu, sigma (population) and delta for every user with training
  interactions (with PST off, delta is the global ``pst.delta`` and mu / sigma are still reported);
* ``pseudo_edges`` (APFI): +1 to tail items, -1 to popular items, weight = S^f. Pseudo edges only
  go to items the user has not interacted with in training, so they never duplicate an observed
  edge; tail and popular items are disjoint, so the two kinds never meet. APFI uses all training
  items of a user, not only the positive ones, so pseudo edges do not depend on the thresholds;
* ``edges``: the whole signed graph in one table (observed edges signed by the thresholds, weight
  = rating, plus the pseudo edges), for reading and export;
* a metrics dict (``graph.json``): counts of each edge kind, users without a positive / negative
  edge (such users are kept, only counted), mean delta, users needing the exact APFI fall-back.

Models read the two parts they use (``thresholds`` and/or ``pseudo_edges``, so a PST change
retrains only the models that read PST) and compose their signed edges with :func:`model_edges`:
observed edges signed by the PST thresholds, or by the global delta when a model runs without
PST; pseudo edges added when it runs with APFI.

Edge cases: see :mod:`pipeline.graph.pst` (all-equal ratings, nu = 0 / 1) and
:mod:`pipeline.graph.apfi` (items never seen in training may receive pseudo edges).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import polars as pl

from pipeline.data import Interactions, SignedEdges
from pipeline.errors import UserError
from pipeline.graph.apfi import PseudoEdges, Similarity, pseudo_edges
from pipeline.graph.pst import edge_signs, global_thresholds, personalised_thresholds, user_rating_stats
from pipeline.log import get_logger
from pipeline.neighbors.groups import tail_mask
from pipeline.repro import fingerprint
from pipeline.settings.sections import APFI, PST
from pipeline.settings.types import is_auto

log = get_logger(__name__)


@dataclass(frozen=True)
class GraphSettings:
    """The two params sections that shape the signed graph, with every value resolved (no ``auto``:
    the graph stage takes SiMGR's selection for those, :func:`pipeline.run.models.resolve_graph`)."""

    pst: PST = field(default_factory=PST)
    apfi: APFI = field(default_factory=APFI)

    def __post_init__(self) -> None:
        unresolved = [f"{name}.{key}" for name, section in (("pst", self.pst), ("apfi", self.apfi))
                      for key, value in section if is_auto(value)]
        if unresolved:
            raise ValueError(f"the signed graph needs values, not auto: {unresolved}")

    def describe(self) -> dict[str, Any]:
        """The values as graph.json records them (``pst.nu``, ``apfi.xi``, ...)."""
        return {f"{name}.{key}": value for name, section in (("pst", self.pst), ("apfi", self.apfi)) for key, value in section}


@dataclass(frozen=True)
class SignedGraph:
    edges: pl.DataFrame  # schema "edges"
    thresholds: pl.DataFrame  # schema "thresholds"
    pseudo: pl.DataFrame  # schema "pseudo_edges"
    metrics: dict[str, Any]
    fingerprint: pl.DataFrame  # schema "fingerprint": observed signs (exact) and pseudo sets with their margins


def training_rows(interactions: pl.DataFrame, source: str = "interactions") -> pl.DataFrame:
    """The split == "train" rows (user, item, rating), checked for eq. 12's positive ratings."""
    train = interactions.filter(pl.col("split") == "train").select("user", "item", "rating")
    bad = train.filter(~pl.col("rating").is_finite() | (pl.col("rating") <= 0))
    if bad.height:
        raise UserError(
            f"{source}: {bad.height} training rating(s) are not positive finite numbers, e.g. user {bad['user'][0]} "
            f"item {bad['item'][0]} rating {bad['rating'][0]} (eq. 12 needs ratings > 0)"
        )
    return train


def _check_groups(train: pl.DataFrame, groups: pl.DataFrame, xi: float, source: str) -> np.ndarray:
    """The tail mask of item_groups, checked against the training interactions."""
    n_items = groups.height
    if train.height and int(train["item"].max()) >= n_items:
        raise UserError(f"{source}: item {int(train['item'].max())} of the interactions is outside its {n_items} items (stale neighbors outputs?)")
    groups = groups.sort("item")
    degree = np.bincount(train["item"].to_numpy(), minlength=n_items)
    diff = np.flatnonzero(groups["degree"].to_numpy() != degree)
    if len(diff):
        i = int(diff[0])
        raise UserError(
            f"{source}: item {i} has degree {groups['degree'][i]}, but {degree[i]} training interactions "
            "(eq. 15 uses training degrees; re-run the neighbors stage)"
        )
    tail = groups["tail"].to_numpy().astype(bool)
    expected = tail_mask(degree, xi)  # eq. 15
    if not np.array_equal(tail, expected):
        raise UserError(
            f"{source}: {int(tail.sum())} tail items, but apfi.xi = {xi} gives {int(expected.sum())} "
            f"(first difference at item {int(np.flatnonzero(tail != expected)[0])}; re-run the neighbors stage)"
        )
    return tail


def build_signed_graph(
    interactions: pl.DataFrame,
    settings: GraphSettings,
    *,
    item_groups: pl.DataFrame | None = None,
    tail_lists: pl.DataFrame | None = None,
    popular_lists: pl.DataFrame | None = None,
    similarity: Callable[[], Similarity] | None = None,
    valid: np.ndarray | None = None,
    sources: dict[str, str] | None = None,
) -> SignedGraph:
    """Thresholds, signs and pseudo edges from an ``interactions`` table (see the module docstring).

    The APFI inputs (``item_groups``, the two ``candidates`` tables and a factory of the fused
    similarity for the exact fall-back) are needed only when ``settings.apfi.enabled``; ``valid``
    marks the items with a non-zero vector in every modality (default: all).
    """
    src = {"interactions": "interactions", "item_groups": "item_groups", "tail": "tail_candidates", "popular": "popular_candidates"}
    src.update(sources or {})
    train = training_rows(interactions, src["interactions"])
    user = train["user"].to_numpy().astype(np.int64)
    item = train["item"].to_numpy().astype(np.int64)
    rating = train["rating"].to_numpy().astype(np.float32)
    n_users = int(user.max()) + 1 if len(user) else 0

    count, mu, eps = user_rating_stats(user, rating, n_users)
    pst, apfi = settings.pst, settings.apfi
    delta = personalised_thresholds(mu, eps, pst.nu) if pst.enabled else global_thresholds(n_users, pst.delta)
    sign = edge_signs(rating, delta[user])
    present = np.flatnonzero(count > 0)
    thresholds = pl.DataFrame(
        {
            "user": pl.Series(present, dtype=pl.Int32),
            "mu": pl.Series(mu[present], dtype=pl.Float32),
            "sigma": pl.Series(eps[present], dtype=pl.Float32),
            "delta": pl.Series(delta[present], dtype=pl.Float32),
        }
    )

    empty = PseudoEdges(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32), 0)
    pos, neg = empty, empty
    n_items = n_tail = None
    tail = None
    if apfi.enabled:
        if item_groups is None or tail_lists is None or popular_lists is None or similarity is None:
            raise ValueError("APFI needs item_groups, tail_lists, popular_lists and similarity")
        tail = _check_groups(train, item_groups, apfi.xi, src["item_groups"])
        n_items, n_tail = len(tail), int(tail.sum())
        valid = np.ones(n_items, bool) if valid is None else np.asarray(valid, bool)
        if len(valid) != n_items:
            raise UserError(f"features: {len(valid)} item rows, item_groups: {n_items} items; expected the same items")
        common = dict(q=apfi.q, similarity=similarity, valid=valid)
        pos = pseudo_edges(user, item, tail_lists, tail, zeta=apfi.zeta_pos, largest=True, source=src["tail"], **common)  # eq. 17-19
        neg = pseudo_edges(user, item, popular_lists, ~tail, zeta=apfi.zeta_neg, largest=False, source=src["popular"], **common)  # eq. 20-21

    n_obs, n_pos, n_neg = len(user), len(pos), len(neg)
    edges = pl.DataFrame(
        {
            "user": pl.Series(np.concatenate([user, pos.user, neg.user]), dtype=pl.Int32),
            "item": pl.Series(np.concatenate([item, pos.item, neg.item]), dtype=pl.Int32),
            "sign": pl.Series(np.concatenate([sign, np.ones(n_pos, np.int8), -np.ones(n_neg, np.int8)]), dtype=pl.Int8),
            "origin": pl.Series(["observed"] * n_obs + ["pseudo"] * (n_pos + n_neg), dtype=pl.String),
            "weight": pl.Series(np.concatenate([rating, pos.weight, neg.weight]), dtype=pl.Float32),
        }
    ).sort("user", "item")

    pseudo = edges.filter(pl.col("origin") == "pseudo").select("user", "item", "sign", "weight")
    metrics = _metrics(edges, thresholds, settings, pos, neg, n_items, n_tail, item, tail, valid)
    return SignedGraph(edges, thresholds, pseudo, metrics, _fingerprint(present, user, item, sign, rating, pos, neg))


def _fingerprint(users: np.ndarray, user: np.ndarray, item: np.ndarray, sign: np.ndarray, rating: np.ndarray,
                 pos: PseudoEdges, neg: PseudoEdges) -> pl.DataFrame:
    """Per user: the observed signed edges (exact) and each pseudo kind with its decision margin."""
    parts = [fingerprint.edge_sets("observed", user, item, rating, users, sign=sign)]
    for part, edges in (("pseudo_positive", pos), ("pseudo_negative", neg)):
        margin = np.full(len(users), np.inf)
        at = np.searchsorted(users, edges.margin_user)
        margin[at] = edges.margin
        parts.append(fingerprint.edge_sets(part, edges.user, edges.item, edges.weight, users, margin=margin))
    return pl.concat(parts)


def _metrics(
    edges: pl.DataFrame,
    thresholds: pl.DataFrame,
    settings: GraphSettings,
    pos: PseudoEdges,
    neg: PseudoEdges,
    n_items: int | None,
    n_tail: int | None,
    train_item: np.ndarray,
    tail: np.ndarray | None,
    valid: np.ndarray | None,
) -> dict[str, Any]:
    users = thresholds["user"].to_numpy()
    obs = edges.filter(pl.col("origin") == "observed")

    def without(frame: pl.DataFrame, s: int) -> int:
        return int((~np.isin(users, frame.filter(pl.col("sign") == s)["user"].to_numpy())).sum())

    out: dict[str, Any] = {
        "users": thresholds.height,
        "observed_positive": int((obs["sign"] == 1).sum()),
        "observed_negative": int((obs["sign"] == -1).sum()),
        "pseudo_positive": len(pos),
        "pseudo_negative": len(neg),
        "edges": edges.height,
        "users_no_positive": without(obs, 1),
        "users_no_negative": without(obs, -1),
        "users_no_positive_with_pseudo": without(edges, 1),
        "users_no_negative_with_pseudo": without(edges, -1),
        "mean_delta": round(float(thresholds["delta"].cast(pl.Float64).mean()), 6) if thresholds.height else None,
        "fallback_users_positive": pos.n_fallback_users,
        "fallback_users_negative": neg.n_fallback_users,
    }
    if n_items is not None and tail is not None:
        unseen = np.setdiff1d(np.arange(n_items), train_item)
        out["items"] = n_items
        out["tail_items"] = n_tail
        out["items_zero_vector"] = int((~valid).sum()) if valid is not None else 0
        out["items_unseen_in_training"] = len(unseen)
        out["items_unseen_with_pseudo_edge"] = int(np.isin(unseen, np.concatenate([pos.item, neg.item])).sum())
    out["settings"] = settings.describe()
    return out


def model_edges(train: Interactions, *, thresholds: np.ndarray | None, delta: float | None,
                pseudo: SignedEdges | None) -> SignedEdges:
    """A model's signed edges from the training ratings.

    Observed edges are signed by the per-user ``thresholds`` (PST, eq. 14) when given, else by the
    global ``delta`` (SGA without PST, §4.1): rating > threshold is positive. ``pseudo`` edges
    (APFI) are appended when given.
    """
    if (thresholds is None) == (delta is None):
        raise ValueError("model_edges signs observed edges by PST's thresholds or by the global delta: give one")
    threshold = np.asarray(thresholds, np.float32)[train.user] if thresholds is not None else np.float32(delta)
    observed = SignedEdges(train.user, train.item, edge_signs(train.rating, threshold), np.zeros(len(train), bool), train.rating)
    if pseudo is None:
        return observed
    return SignedEdges(*(np.concatenate([a, b]) for a, b in zip(
        (observed.user, observed.item, observed.sign, observed.pseudo, observed.weight),
        (pseudo.user, pseudo.item, pseudo.sign, pseudo.pseudo, pseudo.weight))))
