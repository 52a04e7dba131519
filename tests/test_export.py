"""`simgr export`: serving files whose FAISS index ranks like the model, and an MMRec folder that round-trips.

The index test uses integer-valued embeddings whose scores are distinct integers below 2^24: every
inner product is exact in float32 whatever the kernel sums first, so FAISS and torch must agree
item for item and score for score on any machine.
"""

from __future__ import annotations

import json

import faiss
import numpy as np
import polars as pl
import pytest
import torch
from typer.testing import CliRunner

from pipeline.errors import UserError
from pipeline.evaluation.ranking import evaluate_splits, top_items
from pipeline.export.mmrec import export_mmrec
from pipeline.export.serving import excluded_items, export_run, index_top_k, load_interactions
from pipeline.ingest.dataset import ingest
from pipeline.settings.sections import Ingest
from conftest import shipped_params
from pipeline.schemas import read_table, write_table
from test_evaluate_stage import GROUPS, N_ITEMS, N_USERS, write_fake_dataset

PARAMS = shipped_params(run={"datasets": ["toy"], "seeds": [1], **{**{k: [] for k in GROUPS}, "models_cf": ["mf"]}},
                        evaluate={"protocol": "mmrec", "topk": [10], "batch_size": 7, "device": "cpu"},
                        datasets__toy={"format": "generic", "source": "shipped", "reviews": "r.csv"})


def exact_embeddings(seed: int = 3, d: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    """score(u, i) = N_ITEMS * (a_u . b_i) + i (small integers): distinct per user, exact in float32."""
    rng = np.random.default_rng(seed)
    a = rng.integers(-3, 4, size=(N_USERS, d - 1)) * N_ITEMS
    b = rng.integers(-3, 4, size=(N_ITEMS, d - 1))
    user = np.hstack([a, np.ones((N_USERS, 1))]).astype(np.float32)
    item = np.hstack([b, np.arange(N_ITEMS)[:, None]]).astype(np.float32)
    return torch.from_numpy(user), torch.from_numpy(item)


@pytest.fixture
def served(tmp_path):
    write_fake_dataset(tmp_path, PARAMS, seed=2)
    user, item = exact_embeddings()
    run = tmp_path / "models" / "toy" / "mf-1"
    torch.save({"user": user, "item": item}, run / "embeddings.pt")
    return tmp_path, run, user, item


def test_index_top_k_equals_the_models_ranking_under_the_same_masking(served):
    root, run, user, item = served
    ingest_dir = root / "data" / "toy" / "ingest"
    _, _, sets = load_interactions(ingest_dir)
    index_path = root / "out" / "items.faiss"
    users = np.arange(N_USERS)
    for exclude in (("train", "valid", "test"), ("train",)):
        export_run(ingest_dir, run, root / "out", k=10, exclude=exclude, batch_size=7)
        index = faiss.read_index(str(index_path))
        assert index.ntotal == N_ITEMS and index.metric_type == faiss.METRIC_INNER_PRODUCT
        user_np = np.load(root / "out" / "user_embeddings.npy")
        got_items, got_scores = index_top_k(index, user_np, excluded_items(sets, users, exclude), 10)
        want_items, want_scores = top_items(user, item, sets, users, 10, exclude=exclude)
        np.testing.assert_array_equal(got_items, want_items)
        np.testing.assert_array_equal(got_scores, want_scores)
        recs = read_table(root / "out" / "recommendations.parquet", "export_recommendations")
        for u in users:
            mine = recs.filter(pl.col("user") == u).sort("rank")
            n = int((want_items[u] >= 0).sum())
            assert mine["item"].to_list() == want_items[u][:n].tolist()
            assert mine["score"].to_list() == want_scores[u][:n].tolist()
            assert mine["rank"].to_list() == list(range(1, n + 1))
    # under `train` masking (mmrec protocol) the index ranks like the evaluation itself
    test = evaluate_splits(user, item, sets, ("test",), ks=(10,), protocol="mmrec")["test"]
    got, _ = index_top_k(index, user_np[test.users], excluded_items(sets, test.users, ("train",)), 10)
    np.testing.assert_array_equal(got, test.topk_items)


def test_export_writes_raw_ids_embeddings_and_a_manifest(served):
    root, run, user, item = served
    ingest_dir = root / "data" / "toy" / "ingest"
    manifest = export_run(ingest_dir, run, root / "out", k=5, run="models/toy/mf-1")
    recs = read_table(root / "out" / "recommendations.parquet", "export_recommendations")
    users = read_table(ingest_dir / "users.parquet", "users")
    items = read_table(ingest_dir / "items.parquet", "items")
    inter = read_table(ingest_dir / "interactions.parquet", "interactions")
    assert recs.columns == ["user", "user_id", "rank", "item", "item_id", "score"]
    assert recs.join(users, on="user")["user_id"].to_list() == recs.join(users, on="user")["user_id_right"].to_list()
    assert recs.join(items, on="item").select((pl.col("item_id") == pl.col("asin")).all()).item()
    assert recs.join(inter, on=["user", "item"], how="inner").height == 0  # nothing the user already has
    assert sorted(set(recs["user"].to_list())) == list(range(N_USERS)) and recs.height == N_USERS * 5
    np.testing.assert_array_equal(np.load(root / "out" / "item_embeddings.npy"), item.numpy())
    assert json.loads((root / "out" / "manifest.json").read_text()) == manifest
    assert (manifest["run"], manifest["k"], manifest["excluded"], manifest["dim"]) == ("models/toy/mf-1", 5, ["train", "valid", "test"], 6)
    assert read_table(root / "out" / "items.parquet", "items").columns == ["item", "asin", "title"]
    with pytest.raises(UserError, match="--exclude: expected splits among"):
        export_run(ingest_dir, run, root / "out", exclude=("training",))


def _rewrite_ratings(ingest_dir):
    inter = read_table(ingest_dir / "interactions.parquet", "interactions")
    odd = pl.when(pl.col("user") == 3).then(pl.lit(3.7)).otherwise(pl.col("rating")).cast(pl.Float32)
    inter = inter.with_columns(rating=odd)
    write_table(inter, "interactions", ingest_dir / "interactions.parquet")
    return inter


def test_mmrec_export_round_trips_through_our_importer(tmp_path):
    write_fake_dataset(tmp_path, PARAMS, seed=2)
    ingest_dir = tmp_path / "data" / "toy" / "ingest"
    inter = _rewrite_ratings(ingest_dir)  # a rating that is not a whole number (float32 3.7)
    vectors = tmp_path / "data" / "toy" / "features" / "vectors"
    vectors.mkdir(parents=True)
    np.save(vectors / "text.npy", np.random.default_rng(0).standard_normal((N_ITEMS, 8)).astype(np.float32))
    folder = tmp_path / "mmrec" / "toy"
    done = export_mmrec(ingest_dir, tmp_path / "data" / "toy" / "features", folder, "toy")
    assert sorted(p.name for p in folder.iterdir()) == ["i_id_mapping.csv", "text_feat.npy", "toy.inter", "toy.yaml", "u_id_mapping.csv"]
    assert (folder / "toy.inter").read_text().splitlines()[0] == "userID\titemID\trating\ttimestamp\tx_label"
    assert done["splits"] == {s: int((inter["split"] == s).sum()) for s in ("train", "valid", "test")}
    config = (folder / "toy.yaml").read_text()
    assert "inter_file_name: 'toy.inter'" in config and "text_feature_file: 'text_feat.npy'" in config and "vision" not in config

    stats = ingest({"format": "mmrec", "reviews": str(folder / "toy.inter")}, Ingest(kcore=5), tmp_path / "back")
    assert stats["format"] == "mmrec" and stats["dropped"] == {}
    # the same rows, ratings (float32 3.7 included), timestamps and split; ingest writes them sorted by (user, item)
    assert read_table(tmp_path / "back" / "interactions.parquet", "interactions").equals(inter.sort(["user", "item"]))
    assert read_table(tmp_path / "back" / "users.parquet", "users").equals(read_table(ingest_dir / "users.parquet", "users"))
    assert read_table(tmp_path / "back" / "items.parquet", "items")["asin"].equals(read_table(ingest_dir / "items.parquet", "items")["asin"])
    assert (folder / "text_feat.npy").read_bytes() == (vectors / "text.npy").read_bytes()


def test_mmrec_export_refuses_what_mmrec_cannot_hold(tmp_path):
    write_fake_dataset(tmp_path, PARAMS, seed=2)
    ingest_dir = tmp_path / "data" / "toy" / "ingest"
    items = read_table(ingest_dir / "items.parquet", "items")
    extra = pl.DataFrame({"item": [N_ITEMS], "asin": ["ZZZ"], "title": [None]}, schema=items.schema)
    write_table(pl.concat([items, extra]), "items", ingest_dir / "items.parquet")
    with pytest.raises(UserError, match=rf"interactions.parquet: item {N_ITEMS} has no interaction \(1 of {N_ITEMS + 1} items have none\)"):
        export_mmrec(ingest_dir, None, tmp_path / "m", "toy")
    write_table(items, "items", ingest_dir / "items.parquet")
    users = read_table(ingest_dir / "users.parquet", "users").with_columns(user_id=pl.lit("a\tb") + pl.col("user").cast(pl.String))
    write_table(users, "users", ingest_dir / "users.parquet")
    with pytest.raises(UserError, match=r"users.parquet: user id 'a\\tb0' holds '\\t'"):
        export_mmrec(ingest_dir, None, tmp_path / "m", "toy")


def test_cli_export_both_formats(served, monkeypatch):
    from stages.cli import app

    root, _, _, _ = served
    monkeypatch.chdir(root)
    result = CliRunner().invoke(app, ["export", "--dataset", "toy", "--model", "mf", "--seed", "1", "-k", "3"])
    assert result.exit_code == 0, result.output
    assert "exports/toy/mf-1: top 3 of 30 users" in result.output
    assert read_table(root / "exports" / "toy" / "mf-1" / "recommendations.parquet", "export_recommendations").height == 90
    result = CliRunner().invoke(app, ["export", "--dataset", "toy", "--format", "mmrec"])
    assert result.exit_code == 0, result.output
    assert (root / "exports" / "mmrec" / "toy" / "toy.inter").is_file() and "no feature matrix" in result.output
    result = CliRunner().invoke(app, ["export", "--dataset", "toy"])
    assert result.exit_code != 0 and "--model: required with --format serve" in str(result.exception)
