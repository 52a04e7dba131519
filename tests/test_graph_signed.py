"""Signed-graph assembly (edges, thresholds, graph.json), the ablation view, and the graph stage."""

import math

import numpy as np
import polars as pl
import pytest
import yaml

from pipeline.errors import UserError
from pipeline.graph.apfi import fused_similarity
from conftest import shipped_params
from pipeline.data import Interactions, SignedEdges
from pipeline.graph.signed import GraphSettings, build_signed_graph, model_edges
from pipeline.jsonio import read_json
from pipeline.schemas import read_table, validate, write_table
from pipeline.settings.sections import APFI, PST, Neighbors


def graph_settings(nu=0.5, delta=3.0, pst_enabled=True, apfi_enabled=True, **apfi) -> GraphSettings:
    return GraphSettings(PST(enabled=pst_enabled, nu=nu, delta=delta), APFI(enabled=apfi_enabled, **apfi))


def interactions(rows):
    u, i, r, s = zip(*rows)
    return pl.DataFrame(
        {
            "user": pl.Series(u, dtype=pl.Int32),
            "item": pl.Series(i, dtype=pl.Int32),
            "rating": pl.Series(r, dtype=pl.Float32),
            "timestamp": pl.Series(range(len(u)), dtype=pl.Int64),
            "split": pl.Series(s, dtype=pl.String),
        }
    )


def groups_for(inter: pl.DataFrame, n_items: int, xi: float) -> pl.DataFrame:
    train = inter.filter(pl.col("split") == "train")
    degree = np.bincount(train["item"].to_numpy(), minlength=n_items)
    order = np.lexsort((np.arange(n_items), degree))  # ascending degree, ties by item id (eq. 15)
    tail = np.zeros(n_items, bool)
    tail[order[: math.floor(xi * n_items)]] = True
    return pl.DataFrame({"item": pl.Series(range(n_items), dtype=pl.Int32), "degree": pl.Series(degree, dtype=pl.Int32), "tail": tail})


def lists_for(S: np.ndarray, group: np.ndarray, k: int, largest: bool) -> pl.DataFrame:
    q, j, s, r = [], [], [], []
    for a in range(len(S)):
        cand = sorted((b for b in np.flatnonzero(group) if b != a), key=lambda b: (-S[a, b] if largest else S[a, b], b))[:k]
        q += [a] * len(cand)
        j += cand
        s += [float(S[a, b]) for b in cand]
        r += list(range(len(cand)))
    return pl.DataFrame({"item": pl.Series(q, dtype=pl.Int32), "neighbor": pl.Series(j, dtype=pl.Int32), "score": pl.Series(s, dtype=pl.Float32), "rank": pl.Series(r, dtype=pl.Int16)})


def apfi_inputs(inter, feats, xi, k):
    n_items = feats[0].shape[0]
    groups = groups_for(inter, n_items, xi)
    tail = groups["tail"].to_numpy()
    sim = fused_similarity(feats)
    S = sim(np.arange(n_items), np.arange(n_items))
    return dict(
        item_groups=groups,
        tail_lists=lists_for(S, tail, k, True),
        popular_lists=lists_for(S, ~tail, k, False),
        similarity=lambda: sim,
    )


def test_thresholds_signs_and_metrics_by_hand():
    # user 0: 5, 5, 5 (delta 2.5); user 1: 1..5 (delta 0.793); user 2: 1, 1 (delta 0.5);
    # a validation rating 1 of user 0 and a test row of user 3 must not count
    rows = [(0, 0, 5, "train"), (0, 1, 5, "train"), (0, 2, 5, "train"), (0, 3, 1, "valid")]
    rows += [(1, i, i + 1, "train") for i in range(5)]
    rows += [(2, 0, 1, "train"), (2, 1, 1, "train"), (3, 4, 2, "test")]
    g = build_signed_graph(interactions(rows), graph_settings(nu=0.5, apfi_enabled=False))
    validate(g.edges, "edges")
    validate(g.thresholds, "thresholds")
    t = g.thresholds
    assert t["user"].to_list() == [0, 1, 2]  # user 3 has no training interaction
    np.testing.assert_allclose(t["mu"], [5, 3, 1])
    np.testing.assert_allclose(t["sigma"], [0, math.sqrt(2), 0], atol=1e-7)
    np.testing.assert_allclose(t["delta"], [2.5, 1.5 - math.sqrt(2) / 2, 0.5], rtol=1e-6)
    assert g.edges.height == 10 and set(g.edges["origin"]) == {"observed"}
    assert g.edges["sign"].to_list() == [1] * 10
    m = g.metrics
    assert (m["observed_positive"], m["observed_negative"], m["pseudo_positive"], m["pseudo_negative"]) == (10, 0, 0, 0)
    assert (m["users"], m["users_no_positive"], m["users_no_negative"]) == (3, 0, 3)
    assert m["mean_delta"] == pytest.approx((2.5 + 1.5 - math.sqrt(2) / 2 + 0.5) / 3, abs=1e-6)

    g1 = build_signed_graph(interactions(rows), graph_settings(nu=1.0, apfi_enabled=False))
    # delta = mu: all-equal users 0 and 2 become all negative; user 1 keeps 4 and 5
    assert g1.edges["sign"].to_list() == [-1, -1, -1, -1, -1, -1, 1, 1, -1, -1]
    assert (g1.metrics["users_no_positive"], g1.metrics["users_no_negative"]) == (2, 0)

    g3 = build_signed_graph(interactions(rows), graph_settings(pst_enabled=False, delta=3.0, apfi_enabled=False))
    assert g3.thresholds["delta"].to_list() == [3.0, 3.0, 3.0]
    np.testing.assert_allclose(g3.thresholds["mu"], [5, 3, 1])  # still reported
    assert g3.edges["sign"].to_list() == [1, 1, 1, -1, -1, -1, 1, 1, -1, -1]


def random_dataset(seed, n_users=12, n_items=30):
    rng = np.random.default_rng(seed)
    feats = [rng.normal(size=(n_items, 8)).astype(np.float32)]
    rows = []
    for u in range(n_users):
        items = rng.choice(n_items, size=int(rng.integers(4, 12)), replace=False)
        splits = ["valid", "test"] + ["train"] * (len(items) - 2)
        rows += [(u, int(i), float(rng.integers(1, 6)), s) for i, s in zip(items, splits)]
    return interactions(rows), feats


def test_no_leak_from_valid_and_test():
    inter, feats = random_dataset(0)
    settings = graph_settings(nu=0.5, xi=0.3, q=4, zeta_pos=-1.0, zeta_neg=1.0)
    train_only = inter.filter(pl.col("split") == "train")
    full = build_signed_graph(inter, settings, **apfi_inputs(inter, feats, 0.3, 6))
    alone = build_signed_graph(train_only, settings, **apfi_inputs(train_only, feats, 0.3, 6))
    assert full.edges.equals(alone.edges) and full.thresholds.equals(alone.thresholds)
    # the case is sensitive: observed edges are exactly the training pairs ...
    held = inter.filter(pl.col("split") != "train").select("user", "item")
    obs = full.edges.filter(pl.col("origin") == "observed").select("user", "item")
    assert obs.sort("user", "item").equals(train_only.select("user", "item").sort("user", "item"))
    assert obs.join(held, on=["user", "item"]).height == 0
    # ... held-out ratings would move mu ...
    all_mu = inter.group_by("user").agg(pl.col("rating").mean()).sort("user")["rating"].to_numpy()
    assert not np.allclose(all_mu, full.thresholds["mu"].to_numpy())
    # ... and some held-out items are pseudo candidates (not treated as interacted)
    pseudo = full.edges.filter(pl.col("origin") == "pseudo").select("user", "item")
    assert pseudo.join(held, on=["user", "item"]).height > 0


def test_pseudo_edges_never_duplicate_observed_and_counts_add_up():
    inter, feats = random_dataset(1)
    settings = graph_settings(nu=0.8, xi=0.3, q=5, zeta_pos=0.0, zeta_neg=0.0)
    g = build_signed_graph(inter, settings, **apfi_inputs(inter, feats, 0.3, 5))
    validate(g.edges, "edges")  # unique (user, item)
    e = g.edges
    obs, pse = e.filter(pl.col("origin") == "observed"), e.filter(pl.col("origin") == "pseudo")
    assert pse.height > 0 and pse.join(obs, on=["user", "item"]).height == 0
    tail = groups_for(inter, 30, 0.3)["tail"].to_numpy()
    pos, neg = pse.filter(pl.col("sign") == 1), pse.filter(pl.col("sign") == -1)
    assert tail[pos["item"].to_numpy()].all() and not tail[neg["item"].to_numpy()].any()
    assert (pos["weight"] > 0).all() and (neg["weight"] < 0).all()
    assert pos.group_by("user").len()["len"].max() <= 5
    m = g.metrics
    assert (m["pseudo_positive"], m["pseudo_negative"]) == (pos.height, neg.height)
    assert m["observed_positive"] + m["observed_negative"] == obs.height == (inter["split"] == "train").sum()
    assert m["edges"] == e.height and m["tail_items"] == 9 and m["items"] == 30
    assert m["settings"]["pst.nu"] == 0.8


def test_stale_item_groups_rejected():
    inter, feats = random_dataset(2)
    inputs = apfi_inputs(inter, feats, 0.3, 5)
    inputs["item_groups"] = groups_for(inter.with_columns(split=pl.lit("train")), 30, 0.3)  # degrees over all splits
    with pytest.raises(UserError, match="degree"):
        build_signed_graph(inter, graph_settings(xi=0.3, q=4), **inputs)


def test_non_positive_rating_rejected():
    with pytest.raises(UserError, match="eq. 12"):
        build_signed_graph(interactions([(0, 0, 0.0, "train")]), graph_settings(apfi_enabled=False))


def test_model_edges_hand_case():
    # user 0 rates 5 and 3 (PST thresholds 2.5: +1, +1), user 1 rates 2 (threshold 2.5: -1)
    train = Interactions.from_arrays([0, 0, 1], [0, 1, 0], [5.0, 3.0, 2.0])
    thresholds = np.array([2.5, 2.5], np.float32)
    pseudo = SignedEdges(np.array([0, 1]), np.array([2, 3]), np.array([1, -1], np.int8), np.ones(2, bool), np.array([0.5, -0.2], np.float32))
    e = model_edges(train, thresholds=thresholds, delta=None, pseudo=pseudo)
    assert (e.user.tolist(), e.item.tolist(), e.sign.tolist(), e.pseudo.tolist()) == (
        [0, 0, 1, 0, 1], [0, 1, 0, 2, 3], [1, 1, -1, 1, -1], [False] * 3 + [True] * 2)
    assert e.weight.tolist() == pytest.approx([5.0, 3.0, 2.0, 0.5, -0.2])
    e = model_edges(train, thresholds=None, delta=3.0, pseudo=pseudo)
    assert e.sign.tolist() == [1, -1, -1, 1, -1]  # global delta: rating 3 - 3 is not > 0; pseudo signs untouched
    e = model_edges(train, thresholds=thresholds, delta=None, pseudo=None)
    assert (e.user.tolist(), e.sign.tolist(), e.pseudo.any()) == ([0, 0, 1], [1, 1, -1], False)
    assert model_edges(train, thresholds=None, delta=2.0, pseudo=None).sign.tolist() == [1, 1, -1]
    with pytest.raises(ValueError, match="give one"):
        model_edges(train, thresholds=thresholds, delta=3.0, pseudo=None)


def test_pseudo_table_is_the_pseudo_part_of_edges():
    inter, feats = random_dataset(3)
    g = build_signed_graph(inter, graph_settings(nu=0.5, xi=0.3, q=4, zeta_pos=0.0, zeta_neg=0.0), **apfi_inputs(inter, feats, 0.3, 4))
    validate(g.pseudo, "pseudo_edges")
    assert g.pseudo.equals(g.edges.filter(pl.col("origin") == "pseudo").select("user", "item", "sign", "weight"))
    assert g.pseudo.height > 0


def test_stage_writes_reproducible_outputs(tmp_path, monkeypatch):
    import stages.graph as stage
    from pipeline.graph.build import candidate_settings, signed_graph

    inter, feats = random_dataset(3)
    root = tmp_path / "data" / "toy"
    write_table(inter, "interactions", root / "ingest" / "interactions.parquet")
    (root / "features" / "vectors").mkdir(parents=True)
    np.save(root / "features" / "vectors" / "text.npy", feats[0])
    (tmp_path / "tuning" / "toy" / "simgr").mkdir(parents=True)
    # an `auto` value takes the selection; a written value runs as written, whatever the study selected
    (tmp_path / "tuning" / "toy" / "simgr" / "selected.json").write_text('{"values": {"apfi.q": 4, "apfi.xi": 0.15}}')
    params = shipped_params(datasets__toy={"format": "generic", "reviews": "r.csv"}, run__datasets=["toy"],
                            pst={"enabled": True, "nu": 0.5, "delta": 3.0},
                            apfi={"enabled": True, "xi": 0.3, "q": "auto", "zeta_pos": 0.0, "zeta_neg": 0.0},
                            neighbors={"k": 10, "candidates": 8, "device": "cpu", "block_size": 64, "recall_sample": 16, "seed": 0})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)

    stage.main("toy")
    out = root / "graph"
    files = ("edges.parquet", "thresholds.parquet", "pseudo_edges.parquet", "graph.json", "fingerprint.parquet", "candidates/tail_candidates.parquet")
    first = {p: (out / p).read_bytes() for p in files}
    stage.main("toy")
    assert first == {p: (out / p).read_bytes() for p in first}
    settings = graph_settings(nu=0.5, xi=0.3, q=4, zeta_pos=0.0, zeta_neg=0.0)
    expected, _ = signed_graph(inter, {"text": feats[0]}, settings, candidate_settings(Neighbors(**params["neighbors"])))
    edges = read_table(out / "edges.parquet", "edges")
    assert edges.equals(expected.edges)
    assert read_table(out / "pseudo_edges.parquet", "pseudo_edges").equals(expected.pseudo)
    assert read_table(out / "thresholds.parquet", "thresholds").height == 12
    metrics = read_json(out / "graph.json")
    assert metrics["settings"]["apfi.q"] == 4 and metrics["sources"]["apfi.q"] == "selected on validation"
    assert metrics["settings"]["apfi.xi"] == 0.3 and metrics["sources"]["apfi.xi"] == "params.yaml"
    assert metrics["pseudo_positive"] == int(((edges["origin"] == "pseudo") & (edges["sign"] == 1)).sum())
    assert metrics["candidates"]["xi"] == 0.3 and metrics["candidates"]["candidates"] == 8
