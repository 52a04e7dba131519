"""End to end: the real Magazine file against an independent recomputation, the CLI, determinism,
metadata joins, image-file coverage, and the download stage's three sources."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from pipeline.errors import UserError
from pipeline.ingest.dataset import ingest
from pipeline.ingest.download import acquire, folder_sha256, official_files
from pipeline.ingest.image_files import compile_pattern, match_image_files
from pipeline.settings.sections import Ingest
from pipeline.ingest.image_features import iter_asins, read_image_features, write_image_features
from pipeline.schemas import read_table
from stages.cli import app
from oracles import k_core

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
    return k_core(pairs)


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
    cfg = Ingest(kcore=1)
    ingest(source, cfg, tmp_path / "a")
    ingest(source, cfg, tmp_path / "b")
    for name in ("interactions.parquet", "users.parquet", "items.parquet", "stats.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_amazon2014_end_to_end_with_meta_and_images(tmp_path):
    images = write_image_features(tmp_path / "img.b", ["I1", "I7"], np.arange(8, dtype=np.float32).reshape(2, 4))
    source = {"format": "amazon2014", "reviews": str(FIX / "reviews_2014.json"), "meta": str(FIX / "meta_2014.json"),
              "images": str(images), "image_dim": 4}
    stats = ingest(source, Ingest(kcore=1, split="temporal"), tmp_path / "out")
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
        ingest({"reviews": str(FIX / "reviews_2014.json")}, Ingest(kcore=5), tmp_path)


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
    stats = ingest({**cfg, "format": "amazon2014"}, Ingest(), tmp_path / "out")
    assert stats["items"]["with_image"] == stats["n_items"] and stats["n_interactions"] > 0


def test_movielens_params_entry_reads_through_the_generic_path(tmp_path, monkeypatch):
    from pipeline.settings import load_params

    monkeypatch.chdir(ROOT)
    source = load_params().dataset("movielens").model_dump(exclude_none=True)
    stats = ingest(source, Ingest(kcore=5), tmp_path)
    with open(ROOT / "data" / "raw" / "movielens" / "u.data") as fh:
        expected = k_core({tuple(line.split("\t")[:2]) for line in fh})
    assert (stats["n_users"], stats["n_items"], stats["n_interactions"]) == (
        len({u for u, _ in expected}), len({i for _, i in expected}), len(expected))
    items = read_table(tmp_path / "items.parquet", "items")
    toy = items.filter(pl.col("title") == "Toy Story (1995)")
    assert toy["categories"].to_list() == [["Animation", "Children", "Comedy"]]  # TMDB items.csv: genre flags
    assert toy["description"][0].startswith("Led by Woody, Andy's toys live happily in his room")  # the overview
    assert stats["items"]["without_meta"] == 0
    # the TMDB table repeats 64 rows (55 ids, identical): read once; 41 of them are items after the 5-core
    assert stats["meta"] == {"rows": 1390, "duplicate_meta": 41, "rows_for_other_items": 356}
    assert stats["items"]["with_description"] == stats["n_items"] - 3  # 18 overviews missing, 3 among the items
    assert stats["items"]["with_image"] == stats["n_items"] - 7  # 19 posters missing, 7 among the items


def _item_table(tmp_path: Path, rows: list[str]) -> dict:
    (tmp_path / "ratings.csv").write_text("user,item,rating\n" + "".join(f"u{u},{i},5\n" for u in range(3) for i in "abc"))
    (tmp_path / "items.csv").write_text("id,title,genres,plot,year\n" + "".join(r + "\n" for r in rows))
    return {"format": "generic", "reviews": str(tmp_path / "ratings.csv"), "items": str(tmp_path / "items.csv"), "items_id": "id"}


def test_item_text_from_any_named_columns_in_order(tmp_path):
    cfg = _item_table(tmp_path, ['a,Alpha,Drama|War,"A plot, with a comma",1990', "b,Beta,,Only a plot,1991", "c,,Comedy,,1992"])
    ingest({**cfg, "items_text": ["title", "genres", "plot"]}, Ingest(kcore=1), tmp_path / "out")
    items = read_table(tmp_path / "out" / "items.parquet", "items").sort("asin")
    assert items["title"].to_list() == ["Alpha", "Beta", None]
    assert items["description"].to_list() == ["Drama|War A plot, with a comma", "Only a plot", "Comedy"]  # blank cells skipped
    ingest({**cfg, "items_text": ["plot", "year"]}, Ingest(kcore=1), tmp_path / "out")
    items = read_table(tmp_path / "out" / "items.parquet", "items").sort("asin")
    assert "title" not in items.columns and items["description"].to_list() == ["A plot, with a comma 1990", "Only a plot 1991", "1992"]
    ingest({**cfg, "items_text": {"title": "plot", "description": "genres"}}, Ingest(kcore=1), tmp_path / "out")  # the mapping form
    items = read_table(tmp_path / "out" / "items.parquet", "items").sort("asin")
    assert items["title"].to_list() == ["A plot, with a comma", "Only a plot", None] and items["description"][0] == "Drama|War"
    with pytest.raises(UserError, match=r"items.csv: no column 'genre' \(part:0\); columns found: \['id', 'title', 'genres', 'plot', 'year'\]"):
        ingest({**cfg, "items_text": ["title", "genre"]}, Ingest(kcore=1), tmp_path / "out")


def test_repeated_item_rows_are_read_once_and_conflicting_ones_are_an_error(tmp_path, caplog):
    rows = ["a,Alpha,Drama,P1,1990", "b,Beta,War,P2,1991", "a,Alpha,Drama,P1,1990", "c,Gamma,,P3,1992", "a,Alpha,Drama,P1,1990"]
    cfg = {**_item_table(tmp_path, rows), "items_text": ["title", "genres", "plot"]}
    stats = ingest(cfg, Ingest(kcore=1), tmp_path / "out")
    assert stats["meta"]["duplicate_meta"] == 2 and stats["n_items"] == 3
    assert "2 row(s) repeat 1 item id(s) with identical content" in caplog.text
    assert read_table(tmp_path / "out" / "items.parquet", "items").sort("asin")["description"][0] == "Drama P1"
    rows[4] = "a,Alpha,Drama,Another plot,1990"  # year differs too, but is not read
    cfg = {**_item_table(tmp_path, rows), "items_text": ["title", "genres", "plot"]}
    with pytest.raises(UserError, match=r"^.*items.csv:6: item id 'a' of line 2 again, with other content \(column 'plot': "
                                        r"'P1' on line 2, 'Another plot' here\); the item table must give each item one row"):
        ingest(cfg, Ingest(kcore=1), tmp_path / "out")
    rows[4] = "a,Alpha,Drama,P1,2000"  # a column that is not read may differ
    assert ingest({**_item_table(tmp_path, rows), "items_text": ["title", "genres", "plot"]}, Ingest(kcore=1), tmp_path / "out")["n_items"] == 3


# --- a folder of item images (pipeline.ingest.image_files) and the raw paths' kinds ---------------------


def test_file_name_patterns():
    assert compile_pattern("{item}.jpg").fullmatch("12.jpg")["item"] == "12"
    assert compile_pattern("{item}.jpg").fullmatch("12.JPG") is None  # a given pattern is exact
    assert compile_pattern(None).fullmatch("12.JPG")["item"] == "12"  # default: id + any image extension
    assert compile_pattern(None).fullmatch("notes.txt") is None
    assert compile_pattern("poster_{item}_*.png").fullmatch("poster_B01_front.png")["item"] == "B01"
    assert compile_pattern("{item}.jpg").fullmatch("a+b (1).jpg")["item"] == "a+b (1)"  # other characters are literal
    with pytest.raises(ValueError, match="exactly once"):
        compile_pattern("poster.jpg")
    with pytest.raises(ValueError, match="subfolder"):
        compile_pattern("sub/{item}.jpg")


def test_pattern_matching_counts_and_a_folder_matching_no_item(tmp_path):
    folder = tmp_path / "img"
    folder.mkdir()
    for name in ("poster_1_a.png", "poster_1_b.png", "poster_2_a.png", "poster_9_a.png", "1.png"):
        (folder / name).write_bytes(b"x")
    found = match_image_files(folder, ["1", "2", "3"], "poster_{item}_*.png")
    assert {k: p.name for k, p in found.files.items()} == {"1": "poster_1_a.png", "2": "poster_2_a.png"}
    assert found.counts() == {"in_folder": 5, "matched": 2, "not_matching_pattern": 1, "unknown_item": 1, "duplicate_for_an_item": 1}
    with pytest.raises(UserError, match=r"img: none of its 5 files is named for an item of the dataset by the pattern "
                                        r"'\{item\}.jpg' \(e.g. item '1', file '1.png'\); set images_pattern"):
        match_image_files(folder, ["1", "2"], "{item}.jpg")


def test_folder_where_a_file_is_expected_and_the_reverse_are_one_line_errors(tmp_path):
    raw = tmp_path / "raw"
    (raw / "posters").mkdir(parents=True)
    (raw / "ratings.csv").write_text("user,item,rating\nu,i,5\n")
    (raw / "img.png").write_bytes(b"x")
    (raw / "vectors.b").mkdir()
    base = {"format": "generic", "source": "shipped", "reviews": str(raw / "ratings.csv")}
    cases = [
        ({"reviews": str(raw / "posters")}, rf"^params.yaml: datasets.toy.reviews: {raw}/posters is a folder, expected a file \(the interactions file\)$"),
        ({"items": str(raw)}, rf"^params.yaml: datasets.toy.items: {raw} is a folder, expected a file \(the item table\)$"),
        ({"images": str(raw / "img.png")}, rf"^params.yaml: datasets.toy.images: {raw}/img.png is a file, expected a folder of item images"),
        ({"images": str(raw / "vectors.b")}, rf"^params.yaml: datasets.toy.images: {raw}/vectors.b is a folder, expected an Amazon 2014 image feature file"),
        ({"images": str(raw / "v.b"), "images_pattern": "{item}.jpg"},
         r"^params.yaml: datasets.toy.images_pattern: '\{item\}.jpg' applies to a folder of image files"),
    ]
    for change, message in cases:
        with pytest.raises(UserError, match=message):
            acquire("toy", {**base, **change}, manifest_dir=tmp_path)
    with pytest.raises(UserError, match=rf"^{raw}/posters: is a folder, expected the interactions file$"):  # simgr ingest
        ingest({**base, "reviews": str(raw / "posters")}, Ingest(), tmp_path / "out")


def test_ingest_counts_the_items_with_a_file_in_the_images_folder(tmp_path):
    cfg = _item_table(tmp_path, ["a,Alpha,,,1990", "b,Beta,,,1991", "c,Gamma,,,1992"])
    (tmp_path / "img").mkdir()
    for name in ("a.jpg", "c.png", "z.png"):  # z is not an item
        (tmp_path / "img" / name).write_bytes(b"x")
    stats = ingest({**cfg, "items_text": ["title"], "images": str(tmp_path / "img")}, Ingest(kcore=1), tmp_path / "out")
    assert stats["items"]["with_image"] == 2


def test_a_shipped_images_folder_is_one_manifest_entry(tmp_path):
    folder = tmp_path / "img"
    folder.mkdir()
    for name, data in (("b.png", b"\x89PNG..."), ("a.jpg", b"\xff\xd8..."), ("notes.txt", b"x"), (".hidden", b"")):
        (folder / name).write_bytes(data)
    (tmp_path / "ratings.csv").write_text("user,item,rating\nu,a,5\n")
    cfg = {"format": "generic", "source": "shipped", "reviews": str(tmp_path / "ratings.csv"), "images": str(tmp_path / "img")}
    entry = acquire("toy", cfg, manifest_dir=tmp_path)["files"]["images"]
    files = sorted(p for p in (tmp_path / "img").iterdir() if not p.name.startswith("."))
    lines = "".join(f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}\n" for p in files)  # `LC_ALL=C sha256sum *`
    assert entry == {"path": (tmp_path / "img").as_posix(), "files": 3, "bytes": sum(p.stat().st_size for p in files),
                     "sha256": hashlib.sha256(lines.encode()).hexdigest()}
    assert folder_sha256(tmp_path / "img") == entry["sha256"]
    with pytest.raises(UserError, match=r"toy: raw file\(s\) not found: .*/nowhere"):
        acquire("toy", {**cfg, "images": str(tmp_path / "nowhere")}, manifest_dir=tmp_path)




def test_ingest_params_are_checked():
    from typer.testing import CliRunner

    from pipeline.settings import validate_params
    from stages.cli import app

    with pytest.raises(UserError, match=r"^params.yaml: ingest.kcor: unknown key \(did you mean 'kcore'\?\)$"):
        validate_params({"ingest": {"kcor": 5}})
    with pytest.raises(UserError, match="^params.yaml: ingest.split: 'weekly' is not one of random, temporal$"):
        validate_params({"ingest": {"split": "weekly"}})
    with pytest.raises(UserError, match="^params.yaml: ingest.on_error: 'ignore' is not one of raise, skip$"):
        validate_params({"ingest": {"on_error": "ignore"}})
    # `simgr ingest` checks its options against the same schema, naming the flag
    for args, message in ((["--kcore", "-1"], "--kcore: -1 is out of range (expected an integer >= 0)"),
                          (["--rating-min", "4", "--rating-max", "2"], "--rating-min: 4.0 is above --rating-max = 2.0")):
        out = CliRunner().invoke(app, ["ingest", "--reviews", "x.csv", "--out", "o", *args])
        assert isinstance(out.exception, UserError) and str(out.exception) == message


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
            ingest({"reviews": str(path)}, Ingest(kcore=5), tmp_path)
        return
    stats = ingest({"reviews": str(path)}, Ingest(kcore=5), tmp_path)
    assert (stats["n_users"], stats["n_items"], stats["n_interactions"]) == (
        len({u for u, _ in expected}), len({i for _, i in expected}), len(expected))
