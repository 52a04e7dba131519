"""Text features: the sentence recipe (real 2018 and hand-written 2014 records), the encoder
against sentence-transformers' own ``encode``, the empty-text fallback, and a text-only dataset
flowing through the features and neighbors stages (the model is loaded once for the module)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from conftest import shipped_params

from pipeline.errors import UserError
from pipeline.features import text as text_mod
from pipeline.features.sentences import item_sentence, item_sentences, strip_html
from pipeline.jsonio import read_json
from pipeline.schemas import read_table, write_table

FIXTURES = Path(__file__).parent / "fixtures" / "features"


# --- the sentence recipe -------------------------------------------------------------------------


def test_strip_html_removes_closed_cut_off_and_escaped_tags():
    assert strip_html("<p>Soft &amp; warm</p>\n\n<br/>blanket") == "Soft & warm blanket"
    assert strip_html('<span class="a-size-medium a-color-secondary"') == ""  # cut-off tag
    assert strip_html("a &lt;b&gt;bold&lt;/b&gt; claim") == "a bold claim"  # escaped tags
    assert strip_html("3 < 5 and 5 > 3") == "3 < 5 and 5 > 3"  # comparisons are not tags
    assert strip_html("caf&eacute;\xa0\tnoir  ") == "café noir"


def _magazine_records() -> list[dict]:
    return [json.loads(line) for line in (FIXTURES / "meta_magazine_3.json").read_text().splitlines()]


def test_sentence_recipe_on_real_amazon_2018_records():
    # three records copied verbatim from data/raw/magazine/meta_Magazine_Subscriptions.json.gz
    recs = {r["asin"]: r for r in _magazine_records()}
    s = {a: item_sentence(r.get("title"), r.get("brand"), r.get("category"), r.get("description")) for a, r in recs.items()}
    # title is only a cut-off <span> tag: dropped; '&amp;' decoded; <i> tags removed; order kept
    assert s["B00005N7P0"].startswith(
        "Future US, Inc. Magazine Subscriptions Technology Computers & Internet MAXIMUM PC is the ultimate upgrade"
    )
    assert "tips & techniques" in s["B00005N7P0"] and "hobbyist, Maximum PC brings" in s["B00005N7P0"]
    assert s["B00005N7P0"].endswith("all your PC computing needs. --Michael Lewis")
    assert s["B00005N7QI"].startswith("Conde Nast Publications Magazine Subscriptions Fashion & Style Men GQ helps")
    # real title, empty brand and description
    assert s["B00005N7RP"] == "Natural Health Magazine Subscriptions Health, Fitness & Wellness Health"
    for sentence in s.values():
        assert "<" not in sentence and "&amp;" not in sentence and "\n" not in sentence and "  " not in sentence


def test_sentence_recipe_on_amazon_2014_records():
    # 2014 meta lines are Python literals; categories is a list of paths, only the first is used
    lines = [
        "{'asin': 'B001', 'title': 'Soft Baby Blanket', 'brand': 'Cozy', "
        "'categories': [['Baby', 'Nursery', 'Bedding'], ['Home', 'Blankets']], "
        "'description': 'Warm.\\nMachine <b>washable</b>.'}",
        "{'asin': 'B002', 'categories': [['Baby']], 'imUrl': 'http://x/y.jpg'}",
        "{'asin': 'B003', 'title': 'Rattle', 'categories': []}",
        "{'asin': 'B004'}",
    ]
    recs = [ast.literal_eval(line) for line in lines]
    got = [item_sentence(r.get("title"), r.get("brand"), r.get("categories"), r.get("description")) for r in recs]
    assert got == ["Soft Baby Blanket Cozy Baby Nursery Bedding Warm. Machine washable .", "Baby", "Rattle", ""]


def test_item_sentences_reads_the_ingest_items_table_with_missing_columns():
    items = pl.DataFrame(
        {"item": [0, 1], "asin": ["a", "b"], "title": ["T1", None], "categories": [["C", "D"], None]},
        schema={"item": pl.Int32, "asin": pl.String, "title": pl.String, "categories": pl.List(pl.String)},
    )
    assert item_sentences(items) == ["T1 C D", ""]


# --- the encoder -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def encoder():
    return text_mod.load_encoder("default", "cpu")


SENTENCES = [
    "Soft Baby Blanket Cozy Baby Nursery Bedding Warm. Machine washable.",
    "Natural Health Magazine Subscriptions Health, Fitness & Wellness Health",
    "Stainless steel water bottle for hiking",
    "a",
]


def test_encode_equals_sentence_transformers_encode(encoder):
    ours = text_mod.encode(encoder, SENTENCES, batch_size=2)
    theirs = encoder.encode(SENTENCES, batch_size=2, convert_to_numpy=True)
    assert ours.dtype == np.float32 and ours.shape == (4, 384)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)  # the model normalises
    # chunking (16 batches per call) keeps row order: each row matches its own sentence only
    cos = ours @ theirs.T
    assert (cos.argmax(axis=1) == np.arange(4)).all()
    np.testing.assert_array_equal(ours, text_mod.encode(encoder, SENTENCES, batch_size=2))  # deterministic


def test_items_without_text_get_the_encoding_of_the_empty_string(encoder):
    feats = text_mod.text_features([SENTENCES[0], "", SENTENCES[2], "   "], encoder, batch_size=4)
    assert (feats.n_encoded, feats.n_fallback) == (2, 2)
    direct = encoder.encode([SENTENCES[0], SENTENCES[2], ""], convert_to_numpy=True)
    np.testing.assert_allclose(feats.matrix[[0, 2]], direct[:2], atol=1e-6)
    np.testing.assert_allclose(feats.matrix[1], direct[2], atol=1e-6)
    np.testing.assert_array_equal(feats.matrix[1], feats.matrix[3])


def test_model_path_errors_are_one_line_user_errors(tmp_path):
    with pytest.raises(UserError, match="features.text_model.*does not exist"):
        text_mod.resolve_model_path(tmp_path / "no-such-model")
    assert text_mod.resolve_model_path("default").joinpath("modules.json").exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="cannot load a sentence-transformers model"):
        text_mod.load_encoder(tmp_path / "empty")


# --- a text-only dataset through both stages --------------------------------------------------------


def _write_dataset(root: Path, n_items: int = 40, n_users: int = 30) -> None:
    rng = np.random.default_rng(3)
    words = ["magazine", "cooking", "travel", "science", "music", "sports", "fashion", "news"]
    items = pl.DataFrame(
        {
            "item": pl.Series(range(n_items), dtype=pl.Int32),
            "asin": [f"A{i:04d}" for i in range(n_items)],
            "title": [None if i == 7 else f"{words[i % 8]} monthly {i}" for i in range(n_items)],
            "description": [None if i == 7 else f"<p>All about {words[i % 8]}&amp;more</p>" for i in range(n_items)],
        }
    )
    write_table(items, "items", root / "data/tiny/ingest/items.parquet")
    pairs = {(int(u), int(i)) for u, i in zip(rng.integers(0, n_users, 400), rng.integers(0, n_items, 400))}
    u, i = map(list, zip(*sorted(pairs)))
    inter = pl.DataFrame(
        {
            "user": pl.Series(u, dtype=pl.Int32),
            "item": pl.Series(i, dtype=pl.Int32),
            "rating": pl.Series(rng.integers(1, 6, len(u)).astype(np.float32), dtype=pl.Float32),
            "timestamp": pl.Series(np.arange(len(u)), dtype=pl.Int64),
            "split": rng.choice(["train", "train", "train", "valid", "test"], len(u)).tolist(),
        }
    )
    write_table(inter, "interactions", root / "data/tiny/ingest/interactions.parquet")
    params = shipped_params(
        datasets__tiny={"format": "amazon2018", "source": "shipped", "reviews": "r.json.gz"},
        features={"text_model": "default", "batch_size": 16, "device": "cpu"},
        neighbors={"k": 5, "candidates": 8, "device": "auto", "block_size": 16, "recall_sample": 40, "seed": 0},
        pst={"enabled": True, "nu": 0.5, "delta": 3.0},
        apfi={"enabled": True, "xi": 0.25, "q": 3, "zeta_pos": 0.4, "zeta_neg": 0.1},
    )
    (root / "params.yaml").write_text(yaml.safe_dump(params))


def test_text_only_dataset_flows_through_features_and_neighbors(tmp_path, monkeypatch, encoder):
    from stages import features as features_stage
    from stages import neighbors as neighbors_stage

    _write_dataset(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(text_mod, "load_encoder", lambda name, device: encoder)  # reuse the loaded model
    features_stage.main("tiny")
    vec_dir = tmp_path / "data/tiny/features/vectors"
    assert sorted(p.name for p in vec_dir.iterdir()) == ["text.npy"]
    text = np.load(vec_dir / "text.npy")
    assert text.shape == (40, 384) and text.dtype == np.float32
    report = read_json(tmp_path / "data/tiny/features/features.json")
    assert report["modalities"] == ["text"] and "image" not in report
    assert report["text"]["items_covered"] == 39 and report["text"]["items_fallback"] == 1
    np.testing.assert_allclose(text[7], encoder.encode([""], convert_to_numpy=True)[0], atol=1e-6)

    neighbors_stage.main("tiny")
    lists = tmp_path / "data/tiny/neighbors/lists"
    assert sorted(p.name for p in lists.iterdir()) == ["knn_text.parquet"]
    knn = read_table(lists / "knn_text.parquet", "knn")
    assert knn.height == 40 * 5 and (knn["item"] != knn["neighbor"]).all()
    nb = read_json(tmp_path / "data/tiny/neighbors/neighbors.json")
    assert nb["modalities"] == ["text"] and nb["device"] == "cpu" and nb["knn"]["text"]["recall_vs_exact"] >= 0.99
    assert "seconds" not in json.dumps(nb)  # timings go to logs/, outputs stay reproducible
    assert (tmp_path / "logs/tiny/neighbors/timing.json").exists()
    first = (lists / "knn_text.parquet").read_bytes()
    neighbors_stage.main("tiny")
    assert (lists / "knn_text.parquet").read_bytes() == first  # byte-for-byte reproducible

    # APFI's candidate lists: the graph stage's (they depend on xi)
    from stages import graph as graph_stage

    (tmp_path / "tuning/tiny/simgr").mkdir(parents=True)
    (tmp_path / "tuning/tiny/simgr/selected.json").write_text('{"values": {}}')
    graph_stage.main("tiny")
    cands = tmp_path / "data/tiny/graph/candidates"
    groups = read_table(cands / "item_groups.parquet", "item_groups")
    assert groups["tail"].sum() == 10  # floor(0.25 * 40)
    tail = read_table(cands / "tail_candidates.parquet", "candidates")
    pop = read_table(cands / "popular_candidates.parquet", "candidates")
    tail_items = set(groups.filter(pl.col("tail"))["item"].to_list())
    assert set(tail["neighbor"].to_list()) <= tail_items
    assert not set(pop["neighbor"].to_list()) & tail_items
    # with one modality S^f is that modality's cosine: check one score by hand
    row = tail.row(0, named=True)
    assert row["score"] == pytest.approx(float(text[row["item"]] @ text[row["neighbor"]]), abs=1e-5)
    rep = read_json(tmp_path / "data/tiny/graph/graph.json")["candidates"]
    assert rep["n_tail"] == 10 and rep["tail_candidates"]["recall_vs_exact"] >= 0.99 and rep["popular_candidates"]["recall_vs_exact"] >= 0.99
