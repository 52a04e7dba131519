"""The synthetic Amazon-2014-format generator: bytes, format, shape and signal."""

from __future__ import annotations

import ast
import gzip
import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pipeline.errors import UserError
from pipeline.ingest.image_features import read_image_features
from pipeline.ingest.synth import RATING_CDF, long_tail_degrees, write_synthetic

SIZES = dict(n_users=600, n_items=300, n_interactions=9000, n_clusters=8, image_dim=64)


def _reviews(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def _meta(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [ast.literal_eval(line) for line in fh]


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> dict[str, Path]:
    return write_synthetic(tmp_path_factory.mktemp("synth"), **SIZES, seed=7)


@pytest.fixture(scope="module")
def parsed(synth):
    return _reviews(synth["reviews"]), _meta(synth["meta"]), read_image_features(synth["images"], dim=SIZES["image_dim"])


def test_file_names_follow_the_2014_release(synth):
    assert {k: p.name for k, p in synth.items()} == {
        "reviews": "reviews_Synthetic_5.json.gz",
        "meta": "meta_Synthetic.json.gz",
        "images": "image_features_Synthetic.b",
    }


def test_same_seed_same_bytes_other_seed_other_bytes(synth, tmp_path):
    again = write_synthetic(tmp_path / "a", **SIZES, seed=7)
    other = write_synthetic(tmp_path / "b", **SIZES, seed=8)
    for kind in synth:
        assert again[kind].read_bytes() == synth[kind].read_bytes(), kind
        assert other[kind].read_bytes() != synth[kind].read_bytes(), kind
    # gzip header: mtime 0 (bytes 4-7) and no file name flag (bit 3 of byte 3)
    head = synth["reviews"].read_bytes()[:10]
    assert head[4:8] == b"\0\0\0\0" and not head[3] & 0x08


def test_reviews_are_json_lines_with_the_2014_fields(parsed):
    reviews, _, _ = parsed
    assert len(reviews) == SIZES["n_interactions"]
    for r in reviews[:50]:
        assert {"reviewerID", "asin", "overall", "unixReviewTime", "reviewText", "summary"} <= set(r)
        assert isinstance(r["overall"], float) and r["overall"] in (1.0, 2.0, 3.0, 4.0, 5.0)
        assert isinstance(r["unixReviewTime"], int) and 1_199_145_600 <= r["unixReviewTime"] < 1_406_073_600
        assert len(r["asin"]) == 10 and r["reviewerID"].startswith("A")


def test_meta_is_single_quoted_python_literals(synth, parsed):
    with gzip.open(synth["meta"], "rt") as fh:
        first = fh.readline()
    assert first.startswith("{'asin': '")
    with pytest.raises(json.JSONDecodeError):
        json.loads(first)
    _, meta, _ = parsed
    assert len(meta) == SIZES["n_items"] == len({m["asin"] for m in meta})
    for m in meta:
        assert isinstance(m["title"], str) and m["title"]
        assert isinstance(m["categories"], list) and isinstance(m["categories"][0], list)
        assert m["categories"][0][0] == "Synthetic"
    assert any("brand" not in m for m in meta) and any("<br />" in m.get("description", "") for m in meta)


def test_image_file_round_trips_with_one_vector_per_item(parsed):
    reviews, meta, images = parsed
    assert list(images) == [m["asin"] for m in meta]
    assert {r["asin"] for r in reviews} == set(images)
    vec = np.stack(list(images.values()))
    assert vec.shape == (SIZES["n_items"], SIZES["image_dim"]) and vec.dtype == np.float32
    assert vec.min() >= 0.0  # ReLU features, like the CNN ones


def test_exact_counts_and_a_5_core_that_keeps_everything(parsed):
    reviews, _, _ = parsed
    pairs = {(r["reviewerID"], r["asin"]) for r in reviews}
    assert len(pairs) == SIZES["n_interactions"]  # no repeated (user, item)
    users = Counter(u for u, _ in pairs)
    items = Counter(i for _, i in pairs)
    assert len(users) == SIZES["n_users"] and len(items) == SIZES["n_items"]
    assert min(users.values()) >= 5 and min(items.values()) >= 5


def test_degrees_are_long_tailed(parsed):
    reviews, _, _ = parsed
    for key in ("reviewerID", "asin"):
        deg = np.array(list(Counter(r[key] for r in reviews).values()))
        assert deg.max() >= 3 * np.median(deg), key
        assert np.percentile(deg, 99) > 2 * np.median(deg), key


def test_rating_distribution_is_amazon_skewed_with_per_user_bias(parsed):
    reviews, _, _ = parsed
    stars = np.array([r["overall"] for r in reviews])
    share = np.array([(stars == s).mean() for s in (1, 2, 3, 4, 5)])
    np.testing.assert_allclose(np.cumsum(share)[:4], RATING_CDF, atol=2e-3)  # quantile cuts
    by_user = defaultdict(list)
    for r in reviews:
        by_user[r["reviewerID"]].append(r["overall"])
    means = np.array([np.mean(v) for v in by_user.values() if len(v) >= 10])
    assert means.std() > 0.4  # generous and strict raters
    assert means.max() - means.min() > 2.0


def test_users_prefer_clusters_and_rate_them_higher(parsed):
    reviews, meta, _ = parsed
    cluster = {m["asin"]: m["categories"][0][1] for m in meta}
    by_user = defaultdict(list)
    for r in reviews:
        by_user[r["reviewerID"]].append((cluster[r["asin"]], r["overall"]))
    top_share, inside, outside = [], [], []
    for rows in by_user.values():
        favourite = Counter(c for c, _ in rows).most_common(1)[0][0]
        top_share.append(np.mean([c == favourite for c, _ in rows]))
        inside += [s for c, s in rows if c == favourite]
        outside += [s for c, s in rows if c != favourite]
    assert np.mean(top_share) > 0.5  # 8 clusters: 1/8 would be no preference
    assert np.mean(inside) > np.mean(outside) + 0.3


def test_image_and_text_features_carry_the_clusters(parsed):
    _, meta, images = parsed
    cluster = np.array([m["categories"][0][1] for m in meta])
    vec = np.stack([images[m["asin"]] for m in meta])
    vec /= np.linalg.norm(vec, axis=1, keepdims=True)
    sim = vec @ vec.T
    np.fill_diagonal(sim, -np.inf)
    nearest = sim.argmax(axis=1)
    assert (cluster[nearest] == cluster).mean() > 0.95
    # titles use the cluster's words: a title's noun is found in other titles of its cluster only
    words = defaultdict(set)
    for m in meta:
        words[m["categories"][0][1]].update(m["title"].lower().split()[2:])
    clusters = list(words)
    overlap = [len(words[a] & words[b]) / len(words[a]) for a in clusters for b in clusters if a != b]
    assert max(overlap) < 0.3


def test_small_sizes_lower_the_minimum_degree(tmp_path):
    paths = write_synthetic(tmp_path, n_users=12, n_items=10, n_interactions=40, n_clusters=3, image_dim=8, seed=1)
    reviews = _reviews(paths["reviews"])
    pairs = {(r["reviewerID"], r["asin"]) for r in reviews}
    assert len(pairs) == len(reviews) == 40
    assert min(Counter(u for u, _ in pairs).values()) >= 3  # 40 // 12
    assert min(Counter(i for _, i in pairs).values()) >= 3


def test_many_clusters_beyond_the_themes_stay_distinct(tmp_path):
    paths = write_synthetic(tmp_path, n_users=300, n_items=200, n_interactions=3000, n_clusters=20, image_dim=8, seed=2)
    names = {m["categories"][0][1] for m in _meta(paths["meta"])}
    assert len(names) == 20


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(n_users=0), "n_users must be a positive integer"),
        (dict(n_clusters=301), "n_clusters (301) must not exceed n_items"),
        (dict(n_interactions=100), "must be at least max(n_users, n_items)"),
        (dict(n_interactions=100_000), "at most half of n_users * n_items"),
    ],
)
def test_bad_sizes_raise_one_line_user_errors(tmp_path, change, message):
    with pytest.raises(UserError) as err:
        write_synthetic(tmp_path, **{**SIZES, **change})
    assert message in str(err.value) and "\n" not in str(err.value)


def test_long_tail_degrees_respect_bounds_and_total():
    deg = long_tail_degrees(1000, 20_000, 5, 200, 1.2, np.random.default_rng(0))
    assert deg.sum() == 20_000 and deg.min() >= 5 and deg.max() <= 200
    assert (deg == 200).any()  # alpha 1.2 would exceed the cap: the excess was redistributed
    with pytest.raises(ValueError):
        long_tail_degrees(10, 1000, 5, 50, 2.0, np.random.default_rng(0))


def test_cli_synth_writes_the_files(tmp_path):
    from stages.cli import app

    out = tmp_path / "cli"
    result = CliRunner().invoke(app, ["synth", "--out", str(out), "--users", "60", "--items", "40",
                                      "--interactions", "500", "--clusters", "4", "--image-dim", "8", "--seed", "3"])
    assert result.exit_code == 0, result.output
    direct = write_synthetic(tmp_path / "direct", n_users=60, n_items=40, n_interactions=500, n_clusters=4, image_dim=8, seed=3)
    for kind, path in direct.items():
        assert (out / path.name).read_bytes() == path.read_bytes()
