"""The evaluate stage on a tiny fake dataset: outputs agree with a recomputation from the parquet files."""

from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pytest
import torch
import yaml

from conftest import shipped_params

from pipeline.errors import UserError
from pipeline.schemas import read_table, write_table

N_USERS, N_ITEMS = 30, 40
GROUPS = dict(models_cf=["mf"], models_mm=[], models_base=[], models_sga=[], models_pst=[], models_apfi=[], models_signed=["simgr"])
PARAMS = shipped_params(
    run={"datasets": ["toy"], "seeds": [1, 2], **GROUPS},
    evaluate={"protocol": "mmrec", "topk": [10, 20], "batch_size": 7, "device": "cpu"},
    report__metrics=["recall@10", "recall@20", "ndcg@10", "ndcg@20"],
    datasets__toy={"format": "generic", "source": "shipped", "reviews": "r.csv"},
)


def fake_history(seed: int) -> dict:
    """A history.json of ``3 + seed`` epochs; seed 3 validates every other epoch (rows without 'valid')."""
    curve = []
    for e in range(1, 4 + seed):
        row = {"epoch": e, "loss": {"bpr": 0.7 - 0.01 * e}}
        if seed != 3 or e % 2 == 0:
            row["valid"] = {"recall@20": round(0.1 + 0.01 * e + 0.001 * seed, 6)}
        curve.append(row)
    return {"best_epoch": 3, "epochs": 3 + seed, "valid": {}, "curve": curve}


def write_fake_dataset(root, params=PARAMS, seed=0):
    """data/toy/ingest/*.parquet, models/toy/<run>/{embeddings.pt, history.json} and params.yaml under ``root``."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(N_USERS):
        items = rng.permutation(N_ITEMS)[: rng.integers(5, 20)]
        n_test = 0 if u == 0 else max(1, len(items) // 5)
        splits = ["test"] * n_test + ["valid"] * 2 + ["train"] * (len(items) - n_test - 2)
        if u == 1:  # held-out items but no training item: dropped from evaluation
            splits = ["test"] * len(items)
        rows += [(u, int(i), float(rng.integers(1, 6)), 1000 + k, s) for k, (i, s) in enumerate(zip(items, splits))]
    inter = pl.DataFrame(rows, schema={"user": pl.Int32, "item": pl.Int32, "rating": pl.Float32, "timestamp": pl.Int64, "split": pl.String}, orient="row")
    ingest = root / "data" / "toy" / "ingest"
    write_table(inter, "interactions", ingest / "interactions.parquet")
    write_table(pl.DataFrame({"user": np.arange(N_USERS, dtype=np.int32), "user_id": [f"U{u:03d}" for u in range(N_USERS)]}), "users", ingest / "users.parquet")
    titles = [f"Title {i}" if i % 3 else None for i in range(N_ITEMS)]
    write_table(pl.DataFrame({"item": np.arange(N_ITEMS, dtype=np.int32), "asin": [f"A{i:03d}" for i in range(N_ITEMS)], "title": titles}, schema_overrides={"title": pl.String}), "items", ingest / "items.parquet")
    g = torch.Generator().manual_seed(seed)
    for model in [m for key in GROUPS for m in params["run"][key]]:
        for s in params["run"]["seeds"]:
            d = root / "models" / "toy" / f"{model}-{s}"
            d.mkdir(parents=True)
            torch.save({"user": torch.randn(N_USERS, 4, generator=g), "item": torch.randn(N_ITEMS, 4, generator=g)}, d / "embeddings.pt")
            (d / "history.json").write_text(json.dumps(fake_history(s)))
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return inter


@pytest.fixture
def toy(tmp_path, monkeypatch):
    inter = write_fake_dataset(tmp_path)
    monkeypatch.chdir(tmp_path)
    return inter


def test_metrics_recomputed_from_recommendations(toy):
    from stages.evaluate import main

    main("toy")
    m = json.loads(open("metrics/toy/simgr-2.json").read())
    assert list(m["test"]) == [f"{n}@{k}" for n in ("recall", "ndcg", "precision", "map") for k in (10, 20)]
    assert (m["best_epoch"], m["epochs"], m["protocol"]) == (3, 5, "mmrec")
    assert m["n_dropped_no_train"] == {"valid": 0, "test": 1}

    recs = read_table("eval/toy/simgr-2/recommendations.parquet", "recommendations")
    train = toy.filter(pl.col("split") == "train")
    test = toy.filter(pl.col("split") == "test")
    users_with_train = set(train["user"].to_list())
    test_sets = {u: set(g["item"].to_list()) for (u,), g in test.group_by(["user"]) if u in users_with_train}
    assert set(recs["user"].to_list()) == set(test_sets) and m["n_test_users"] == len(test_sets)
    assert recs.join(train, on=["user", "item"], how="inner").height == 0  # training items never recommended
    recall, ndcg = [], []
    for u, rel in sorted(test_sets.items()):
        top = recs.filter(pl.col("user") == u).sort("rank")["item"].to_list()[:20]
        assert len(top) == 20
        hits = [i in rel for i in top]
        recall.append(sum(hits) / len(rel))
        dcg = sum(1 / math.log2(r + 2) for r, h in enumerate(hits) if h)
        ndcg.append(dcg / sum(1 / math.log2(r + 2) for r in range(min(20, len(rel)))))
    assert m["test"]["recall@20"] == pytest.approx(float(np.mean(recall)), abs=1e-12)
    assert m["test"]["ndcg@20"] == pytest.approx(float(np.mean(ndcg)), abs=1e-12)

    um = read_table("eval/toy/simgr-2/user_metrics.parquet", "user_metrics")
    t = um.filter(pl.col("split") == "test").sort("user")
    assert t["user"].to_list() == sorted(test_sets)
    np.testing.assert_allclose(t["recall@20"].to_numpy(), recall, atol=1e-12)
    assert t["recall@20"].mean() == pytest.approx(m["test"]["recall@20"], abs=1e-15)
    v = um.filter(pl.col("split") == "valid")
    assert v.height == m["n_valid_users"] and v["ndcg@10"].mean() == pytest.approx(m["valid"]["ndcg@10"], abs=1e-15)


def test_outputs_are_byte_reproducible(toy):
    from stages.evaluate import main

    main("toy")
    files = ["metrics/toy/mf-1.json", "eval/toy/mf-1/recommendations.parquet", "eval/toy/mf-1/user_metrics.parquet"]
    first = [open(f, "rb").read() for f in files]
    main("toy")
    assert [open(f, "rb").read() for f in files] == first


def test_strict_protocol_never_recommends_validation_items(toy, tmp_path):
    from stages.evaluate import main

    params = yaml.safe_load(open("params.yaml"))
    params["evaluate"]["protocol"] = "strict"
    open("params.yaml", "w").write(yaml.safe_dump(params))
    main("toy")
    recs = read_table("eval/toy/mf-1/recommendations.parquet", "recommendations")
    valid = toy.filter(pl.col("split") == "valid")
    assert recs.join(valid, on=["user", "item"], how="inner").height == 0
    assert json.loads(open("metrics/toy/mf-1.json").read())["protocol"] == "strict"


def test_missing_run_and_bad_params_are_user_errors(toy):
    import shutil

    from stages.evaluate import main

    shutil.rmtree("models/toy/simgr-1")
    with pytest.raises(UserError, match="models/toy/simgr-1: run directory not found"):
        main("toy")
    params = yaml.safe_load(open("params.yaml"))
    params["evaluate"]["protocol"] = "loose"
    open("params.yaml", "w").write(yaml.safe_dump(params))
    with pytest.raises(UserError, match="evaluate.protocol"):
        main("toy")


def test_bad_embeddings_are_user_errors(toy):
    from stages.evaluate import main

    torch.save({"user": torch.zeros(N_USERS - 1, 4), "item": torch.zeros(N_ITEMS, 4)}, "models/toy/mf-2/embeddings.pt")
    with pytest.raises(UserError, match=r"mf-2/embeddings.pt: 'user' must be a \[30, d\] tensor"):
        main("toy")


def test_recommend_prints_titles_and_excludes_training_items(toy):
    from typer.testing import CliRunner

    from stages.cli import app

    result = CliRunner().invoke(app, ["recommend", "--user", "U005", "-k", "6", "--dataset", "toy", "--model", "mf", "--seed", "1"])
    assert result.exit_code == 0, result.output
    emb = torch.load("models/toy/mf-1/embeddings.pt")
    scores = (emb["user"][5] @ emb["item"].T).numpy()
    mine = toy.filter(pl.col("user") == 5)
    train = set(mine.filter(pl.col("split") == "train")["item"].to_list())
    want = sorted((i for i in range(N_ITEMS) if i not in train), key=lambda i: -scores[i])[:6]
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("top 6 items for user U005 (id 5) of toy, run mf-1")
    held = dict(zip(mine["item"].to_list(), mine["split"].to_list()))
    for rank, (line, item) in enumerate(zip(lines[1:], want), start=1):
        title = f"Title {item}" if item % 3 else "(no title)"  # no title and no brand
        assert line.split()[0] == str(rank) and f"A{item:03d}  {title}" in line
        assert ("[held-out" in line) == (item in held)


def test_recommend_rejects_unknown_user(toy):
    from pipeline.evaluation.recommend import recommend_user

    with pytest.raises(UserError, match="data/toy/ingest/users.parquet: unknown user 'nobody'"):
        recommend_user("data/toy/ingest", "models/toy/mf-1", "nobody")


def test_display_title_strips_html():
    from pipeline.evaluation.recommend import display_title

    assert display_title("Gourmet &amp; Wine <i>(1-year)</i>\n", "A1") == "Gourmet & Wine (1-year)"
    assert display_title('<span class="a-size-medium a-color-secondary"', "A2") == "A2"  # broken 2018 metadata
    assert display_title(None, "A3") == "A3"
