"""End to end: the real Magazine file against an independent recomputation, the CLI, determinism,
metadata joins, image-file coverage, and the download stage's three sources."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from pipeline.errors import UserError
from pipeline.ingest.dataset import IngestConfig, ingest
from pipeline.ingest.download import acquire, official_files
from pipeline.ingest.image_features import iter_asins, read_image_features, write_image_features
from pipeline.schemas import read_table
from stages.cli import app

ROOT = Path(__file__).resolve().parents[1]
FIX = Path(__file__).parent / "fixtures" / "ingest"
MAGAZINE = ROOT / "data" / "raw" / "magazine"


def _independent_5core(path: Path) -> set[tuple[str, str]]:
    """Plain Python: distinct (user, item) pairs, then drop users/items with < 5 until stable."""
    pairs = set()
    with gzip.open(path, "rt") as fh:
        for line in fh:
            if line.strip():
                rec = json.loads(line)
                pairs.add((rec["reviewerID"], rec["asin"]))
    return _iterate_5core(pairs)


def _iterate_5core(pairs: set[tuple[str, str]]) -> set[tuple[str, str]]:
    while True:
        deg_u: dict[str, int] = {}
        deg_i: dict[str, int] = {}
        for u, i in pairs:
            deg_u[u] = deg_u.get(u, 0) + 1
            deg_i[i] = deg_i.get(i, 0) + 1
        kept = {(u, i) for u, i in pairs if deg_u[u] >= 5 and deg_i[i] >= 5}
        if kept == pairs:
            return pairs
        pairs = kept


def test_cli_on_real_magazine_matches_an_independent_5core(tmp_path):
    reviews = MAGAZINE / "Magazine_Subscriptions_5.json.gz"
    meta = MAGAZINE / "meta_Magazine_Subscriptions.json.gz"
    result = CliRunner().invoke(app, ["ingest", "--reviews", str(reviews), "--meta", str(meta), "--out", str(tmp_path), "--kcore", "5"])
    assert result.exit_code == 0, result.output
    expected = _independent_5core(reviews)
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert (stats["n_users"], stats["n_items"], stats["n_interactions"]) == (
        len({u for u, _ in expected}), len({i for _, i in expected}), len(expected))
    assert (stats["n_users"], stats["n_items"], stats["n_interactions"]) == (294, 132, 2027)
    assert stats["rows_read"] == 2375 and stats["dropped"]["duplicate_pair"] == 73  # PROVENANCE.md: 73 duplicate rows
    inter = read_table(tmp_path / "interactions.parquet", "interactions")
    users = read_table(tmp_path / "users.parquet", "users")["user_id"].to_list()
    items = read_table(tmp_path / "items.parquet", "items")
    got = {(users[u], items["asin"][i]) for u, i in inter.select("user", "item").iter_rows()}
    assert got == expected
    assert stats["items"]["without_meta"] == int(items["title"].is_null().sum()) == 4
    assert stats["splits"]["train"] + stats["splits"]["valid"] + stats["splits"]["test"] == 2027


def test_outputs_are_byte_identical_across_runs(tmp_path):
    source = {"format": "amazon2018", "reviews": str(FIX / "reviews_2018.json"), "meta": str(FIX / "meta_2018.json")}
    cfg = IngestConfig(kcore=1)
    ingest(source, cfg, tmp_path / "a")
    ingest(source, cfg, tmp_path / "b")
    for name in ("interactions.parquet", "users.parquet", "items.parquet", "stats.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_amazon2014_end_to_end_with_meta_and_images(tmp_path):
    images = write_image_features(tmp_path / "img.b", ["I1", "I7"], np.arange(8, dtype=np.float32).reshape(2, 4))
    source = {"format": "amazon2014", "reviews": str(FIX / "reviews_2014.json"), "meta": str(FIX / "meta_2014.json"),
              "images": str(images), "image_dim": 4}
    stats = ingest(source, IngestConfig(kcore=1, split="temporal"), tmp_path / "out")
    # kept after cleaning (file order): U1-I2, U2-I1, U1-I1, U2-I3 -> users U1=0, U2=1; items I2=0, I1=1, I3=2
    inter = pl.read_parquet(tmp_path / "out" / "interactions.parquet")
    # temporal, N = 4: floor(0.8 N) = 3 earliest (t = 150, 160, 200) train, floor(0.9 N) = 3 -> no valid, t = 300 test
    assert inter.rows() == [(0, 0, 4.0, 200, "train"), (0, 1, 2.0, 300, "test"), (1, 1, 3.0, 150, "train"), (1, 2, 1.0, 160, "train")]
    items = pl.read_parquet(tmp_path / "out" / "items.parquet")
    assert items.rows() == [
        (0, "I2", "Bottle", None, ["Baby", "Feeding"], None),
        (1, "I1", "Baby's First Spoon", "Acme", ["Baby", "Feeding", "Spoons"], "A soft spoon."),
        (2, "I3", None, None, None, None),
    ]
    assert stats["items"] == {"with_title": 2, "with_brand": 1, "with_categories": 2, "with_description": 1, "without_meta": 1, "with_image": 1}
    assert stats["meta"] == {"rows": 3, "duplicate_meta": 1, "rows_for_other_items": 1}
    assert stats["dropped"]["missing_rating"] == 1 and stats["dropped"]["rating_out_of_range"] == 1
    assert stats["rating_histogram"] == {"1": 1, "2": 1, "3": 1, "4": 1}
    assert stats["splits"] == {"train": 3, "valid": 0, "test": 1}


def test_kcore_that_empties_the_dataset_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match=r"nothing is left after the 5-core filter \(from 4 interactions; round 1: 0 interactions"):
        ingest({"reviews": str(FIX / "reviews_2014.json")}, IngestConfig(kcore=5), tmp_path)


def test_image_feature_file_round_trip(tmp_path):
    vectors = np.random.default_rng(0).normal(size=(3, 5)).astype(np.float32)
    path = write_image_features(tmp_path / "f.b", ["B01", "0123456789", "X"], vectors)
    assert path.stat().st_size == 3 * (10 + 4 * 5)
    back = read_image_features(path, dim=5)
    assert list(back) == ["B01", "0123456789", "X"]
    for j, asin in enumerate(back):
        assert np.array_equal(back[asin], vectors[j])
    assert list(iter_asins(path, dim=5)) == ["B01", "0123456789", "X"]
    with pytest.raises(UserError, match="not a whole number of records"):
        list(iter_asins(path, dim=4))


def test_download_shipped_writes_a_deterministic_manifest(tmp_path):
    cfg = {"source": "shipped", "reviews": str(FIX / "reviews_2018.json"), "meta": str(FIX / "meta_2018.json")}
    acquire("toy", cfg, manifest_dir=tmp_path)
    first = (tmp_path / "manifest.json").read_bytes()
    manifest = acquire("toy", cfg, manifest_dir=tmp_path)
    assert (tmp_path / "manifest.json").read_bytes() == first
    assert list(manifest["files"]) == ["reviews", "meta"]
    assert manifest["files"]["reviews"]["bytes"] == (FIX / "reviews_2018.json").stat().st_size
    import hashlib

    assert manifest["files"]["meta"]["sha256"] == hashlib.sha256((FIX / "meta_2018.json").read_bytes()).hexdigest()


def test_download_offline_says_which_files_to_place_where(tmp_path):
    cfg = {"source": "download", "reviews": str(tmp_path / "reviews_Baby_5.json.gz"), "meta": str(tmp_path / "meta_Baby.json.gz")}

    def offline(url, dest):
        raise OSError("network is unreachable")

    with pytest.raises(UserError) as err:
        acquire("baby", cfg, fetch=offline, manifest_dir=tmp_path)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("baby: raw files missing and not downloadable")
    assert f"{tmp_path}/reviews_Baby_5.json.gz (from http://snap.stanford.edu/data/amazon/productGraph/categoryFiles/reviews_Baby_5.json.gz)" in msg
    assert "meta_Baby.json.gz (from" in msg


def test_download_fetches_missing_files_with_the_official_urls(tmp_path):
    cfg = {"source": "download", "reviews": str(tmp_path / "reviews_Sports_and_Outdoors_5.json.gz")}
    fetched = []

    def fake(url, dest):
        fetched.append(url)
        Path(dest).write_bytes(b"x")

    manifest = acquire("sports", cfg, fetch=fake, manifest_dir=tmp_path)
    assert fetched == [official_files("sports")["reviews"][1]]
    assert manifest["files"]["reviews"]["bytes"] == 1
    assert official_files("electronics")["images"][0] == "image_features_Electronics.b"


def test_download_generates_the_synthetic_files(tmp_path):
    d = tmp_path / "raw"
    cfg = {"source": "synthetic", "reviews": str(d / "reviews_Synthetic_5.json.gz"), "meta": str(d / "meta_Synthetic.json.gz"),
           "images": str(d / "image_features_Synthetic.b"), "image_dim": 8}
    synth = {"n_users": 30, "n_items": 20, "n_interactions": 200, "n_clusters": 2, "image_dim": 8, "seed": 1}
    with pytest.raises(UserError, match="image_dim"):
        acquire("synthetic", {**cfg, "image_dim": 16}, synth, manifest_dir=tmp_path)
    with pytest.raises(UserError, match="generator writes"):
        acquire("synthetic", {**cfg, "meta": str(d / "meta_Other.json.gz")}, synth, manifest_dir=tmp_path)
    assert not d.exists()  # a bad configuration generates nothing
    manifest = acquire("synthetic", cfg, synth, manifest_dir=tmp_path)
    assert set(manifest["files"]) == {"reviews", "meta", "images"}
    first = {k: v["sha256"] for k, v in manifest["files"].items()}
    assert acquire("synthetic", cfg, synth, manifest_dir=tmp_path)["files"]["reviews"]["sha256"] == first["reviews"]  # same seed, same bytes
    stats = ingest({**cfg, "format": "amazon2014"}, IngestConfig(), tmp_path / "out")
    assert stats["items"]["with_image"] == stats["n_items"] and stats["n_interactions"] > 0


def test_movielens_params_entry_reads_through_the_generic_path(tmp_path, monkeypatch):
    from pipeline.params import load_params

    monkeypatch.chdir(ROOT)
    source = load_params()["datasets"]["movielens"]
    stats = ingest(source, IngestConfig(kcore=5), tmp_path)
    with open(ROOT / "data" / "raw" / "movielens" / "u.data") as fh:
        expected = _iterate_5core({tuple(line.split("\t")[:2]) for line in fh})
    assert (stats["n_users"], stats["n_items"], stats["n_interactions"]) == (
        len({u for u, _ in expected}), len({i for _, i in expected}), len(expected))
    items = read_table(tmp_path / "items.parquet", "items")
    toy = items.filter(pl.col("title") == "Toy Story (1995)")
    assert toy["categories"].to_list() == [["Animation", "Children's", "Comedy"]]
    assert stats["items"]["without_meta"] == 0


def test_ingest_params_are_checked():
    with pytest.raises(UserError, match=r"^params.yaml: ingest.kcor: unknown key \(did you mean 'kcore'\?\)$"):
        IngestConfig.from_params({"kcor": 5})
    with pytest.raises(UserError, match="^params.yaml: ingest.split: 'weekly' is not one of random, temporal$"):
        IngestConfig.from_params({"split": "weekly"})
    with pytest.raises(UserError, match="^params.yaml: ingest.on_error: 'ignore' is not one of raise, skip$"):
        IngestConfig.from_params({"on_error": "ignore"})
    with pytest.raises(UserError, match=r"^--kcore: -1 is out of range \(expected an integer >= 0\)$"):
        IngestConfig(kcore=-1).check(lambda key: "--" + key.replace("_", "-"))
    with pytest.raises(UserError, match=r"^--rating-min: 4.0 is above --rating-max = 2.0$"):
        IngestConfig(rating_min=4.0, rating_max=2.0).check(lambda key: "--" + key.replace("_", "-"))


SHARED = ROOT.parent / "shared" / "data"
SHARED_FILES = ["amazon2018-all-beauty-5core/All_Beauty_5.json.gz", "amazon2018-amazon-fashion-5core/AMAZON_FASHION_5.json.gz",
                "amazon2018-appliances-5core/Appliances_5.json.gz"]


def shared_file(relative: str) -> Path:
    """A real file under ../shared/data, or skip the test when that folder is not there."""
    path = SHARED / relative
    if not path.is_file():
        pytest.skip(f"{path} not available (only present next to the project checkout)")
    return path


@pytest.mark.parametrize("relative", SHARED_FILES)
def test_other_real_2018_files_match_an_independent_5core(relative, tmp_path):
    path = shared_file(relative)
    expected = _independent_5core(path)
    if not expected:
        with pytest.raises(UserError, match="nothing is left after the 5-core filter"):
            ingest({"reviews": str(path)}, IngestConfig(kcore=5), tmp_path)
        return
    stats = ingest({"reviews": str(path)}, IngestConfig(kcore=5), tmp_path)
    assert (stats["n_users"], stats["n_items"], stats["n_interactions"]) == (
        len({u for u, _ in expected}), len({i for _, i in expected}), len(expected))
