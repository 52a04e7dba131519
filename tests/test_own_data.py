"""README "Your own data", end to end: a headered ratings CSV, an item-text table and a folder of item
images in a temporary repository, one `datasets:` entry (nothing else per dataset), then every stage
function in the order `dvc repro` runs them, to `reports/<name>.md` (issue 13, item 1)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml
from PIL import Image, ImageDraw

from oracles import k_core

ROOT = Path(__file__).resolve().parents[1]
THEMES = {
    "jazz": ["saxophone", "trumpet", "swing", "bebop", "ballads"],
    "garden": ["roses", "soil", "pruning", "seeds", "compost"],
    "cooking": ["pasta", "spices", "baking", "knives", "bread"],
    "travel": ["maps", "trains", "hotels", "beaches", "museums"],
}
N_USERS, N_ITEMS, PER_USER = 60, 40, 12
COLOURS = {"jazz": (200, 40, 40), "garden": (40, 170, 60), "cooking": (230, 200, 60), "travel": (40, 80, 200)}
NO_IMAGE, GRAYSCALE, CORRUPT = ("M005", "M017"), "M010", "M021"


def write_own_data(raw: Path, with_items: bool = True) -> set[tuple[str, str]]:
    """``ratings.csv`` (header ``user_id,item_id,rating,timestamp``) and ``items.csv``; the pairs."""
    rng = random.Random(0)
    themes = list(THEMES)
    raw.mkdir(parents=True)
    lines, pairs, t = ["user_id,item_id,rating,timestamp"], set(), 0
    for u in range(N_USERS):
        for i in rng.sample(range(N_ITEMS), PER_USER):
            t += 1
            rating = 5 if i % 4 == u % 4 else rng.randint(1, 3)  # users like one theme
            lines.append(f"U{u:03d},M{i:03d},{rating},{1_600_000_000 + t}")
            pairs.add((f"U{u:03d}", f"M{i:03d}"))
    (raw / "ratings.csv").write_text("\n".join(lines) + "\n")
    if not with_items:
        return pairs
    items = ["item,title,description"]
    for i in range(N_ITEMS):
        theme = themes[i % 4]
        items.append(f'M{i:03d},{theme.title()} monthly {i},"{" ".join(rng.sample(THEMES[theme], 3))}"')
    (raw / "items.csv").write_text("\n".join(items) + "\n")
    return pairs


def write_images(folder: Path) -> None:
    """``images/<item>.png|jpg``: each item a disc in its theme's colour (sizes vary); two items have no image,
    one is grayscale, one file is corrupt."""
    folder.mkdir()
    themes = list(THEMES)
    for i in range(N_ITEMS):
        item = f"M{i:03d}"
        if item in NO_IMAGE:
            continue
        if item == CORRUPT:
            (folder / f"{item}.jpg").write_bytes(b"\xff\xd8\xff not really a JPEG")
            continue
        size = (60 + 7 * i, 90)
        image = Image.new("RGB", size, (245, 245, 240))
        ImageDraw.Draw(image).ellipse((5, 5, size[0] - 5, size[1] - 5), fill=COLOURS[themes[i % 4]])
        if item == GRAYSCALE:
            image = image.convert("L")
        image.save(folder / f"{item}.{'jpg' if i % 2 else 'png'}")


def own_params(root: Path, with_items: bool = True, with_images: bool = False) -> dict:
    """The repository's params.yaml plus the README's steps: one datasets entry and run.datasets;
    a small run (two seeds, three cheap models, three epochs, no tuning) so the test stays fast.
    Without an item table there are no item features: SiMGR, listed all the same, is skipped with a line. With images
    FREEDOM trains too (it reads the image kNN lists, from which the items without an image are absent)."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["datasets"]["mine"] = {"format": "generic", "source": "shipped", "reviews": "data/raw/mine/ratings.csv"}
    if with_items:
        params["datasets"]["mine"].update(items="data/raw/mine/items.csv", items_text=["title", "description"])
    if with_images:
        params["datasets"]["mine"].update(images="data/raw/mine/images")
    params["run"].update(datasets=["mine"], seeds=[1, 2], models_cf=["mf", "lightgcn"], models_mm=["freedom"] if with_images else [],
                         models_base=[], models_sga=[], models_pst=[], models_apfi=[], models_signed=["simgr"])
    params["train"].update(max_validations=3, valid_every_steps=1, batch_size=256, device="cpu")
    params["tune"]["enabled"] = False  # the studies write empty selections at once (the README's run tunes)
    params["report"]["ablation"] = []
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return params


@pytest.mark.slow
@pytest.mark.parametrize("with_items, with_images", [(True, False), (False, False), (True, True)],
                         ids=["ratings+items", "ratings-only", "ratings+items+images"])
def test_own_ratings_csv_to_the_report(tmp_path, monkeypatch, capsys, with_items, with_images):
    from stages import check, download, evaluate, features, graph, ingest, neighbors, report, train, tune

    pairs = write_own_data(tmp_path / "data" / "raw" / "mine", with_items)
    if with_images:
        write_images(tmp_path / "data" / "raw" / "mine" / "images")
    params = own_params(tmp_path, with_items, with_images)
    monkeypatch.chdir(tmp_path)

    check.main()
    assert capsys.readouterr().out == f"params.yaml: valid ({len(params)} sections, 7 datasets, {len(params['models'])} models)\n"
    download.main("mine")
    ingest.main("mine")
    stats = json.loads(Path("data/mine/ingest/stats.json").read_text())
    expected = k_core(pairs)
    assert (stats["format"], stats["n_interactions"], stats["n_users"], stats["n_items"]) == (
        "generic", len(expected), len({u for u, _ in expected}), len({i for _, i in expected}))
    assert stats["items"]["without_meta"] == (0 if with_items else stats["n_items"])
    manifest = json.loads(Path("data/raw/mine/manifest.json").read_text())
    assert (set(manifest["files"]) == {"reviews", "items", "images"}) if with_images else ("images" not in manifest["files"])
    features.main("mine")
    report_json = json.loads(Path("data/mine/features/features.json").read_text())
    assert report_json["modalities"] == (["image", "text"] if with_images else ["text"] if with_items else [])
    neighbors.main("mine")
    if with_images:  # the missing-image rule through to the kNN lists: zero rows, no image neighbours
        assert stats["items"]["with_image"] == N_ITEMS - len(NO_IMAGE)
        image = report_json["image"]
        assert image["items_missing"] == {"no_file": len(NO_IMAGE), "unreadable": 1}
        assert image["converted_to_rgb"] == {"L": 1} and image["items_covered"] == N_ITEMS - 3
        items = pl.read_parquet("data/mine/ingest/items.parquet")
        blank = set(items.filter(pl.col("asin").is_in([*NO_IMAGE, CORRUPT]))["item"].to_list())
        vectors = np.load("data/mine/features/vectors/image.npy")
        assert vectors.shape == (stats["n_items"], 1280) and set(np.flatnonzero(~vectors.any(axis=1))) == blank
        knn = pl.read_parquet("data/mine/neighbors/lists/knn_image.parquet")
        assert blank.isdisjoint(knn["item"].to_list()) and blank.isdisjoint(knn["neighbor"].to_list())
        assert set(knn["item"].to_list()) == set(range(stats["n_items"])) - blank
    studies = ("mf", "lightgcn", "freedom", "simgr") if with_images else ("mf", "lightgcn", "simgr")
    models = studies if with_items else ("mf", "lightgcn")
    for model in studies:  # SiMGR's study runs for every dataset (the graph stage reads it)
        tune.main("mine", model)
        assert json.loads(Path(f"tuning/mine/{model}/selected.json").read_text())["values"] == {}
    graph.main("mine")
    graph_json = json.loads(Path("data/mine/graph/graph.json").read_text())
    assert graph_json["settings"]["apfi.enabled"] is with_items  # no features, no pseudo edges
    assert graph_json["observed_positive"] + graph_json["observed_negative"] == stats["splits"]["train"]
    runs = [(m, s) for m in models for s in (1, 2)]
    for model, seed in runs:
        train.main("mine", model, seed)
    if not with_items:  # SiMGR reads item features: its runs say why they did not run, and the report lists it
        for seed in (1, 2):
            train.main("mine", "simgr", seed)
            assert json.loads(Path(f"models/mine/simgr-{seed}/skipped.json").read_text())["skipped"].startswith(
                "simgr reads item features, and mine has none")
    evaluate.main("mine")
    report.main("mine")
    if not with_items:
        assert "skipped" in json.loads(Path("metrics/mine/simgr-1.json").read_text())
        assert "## Models that did not run on this dataset\n\n- SiMGR: simgr reads item features" in Path("reports/mine.md").read_text()

    metrics = {run: json.loads(Path(f"metrics/mine/{run[0]}-{run[1]}.json").read_text()) for run in runs}
    assert {m["n_test_users"] for m in metrics.values()} == {stats["n_users"]}
    assert all(m["epochs"] <= 3 and m["protocol"] == "mmrec" for m in metrics.values())
    text = Path("reports/mine.md").read_text()
    assert text.startswith("# Benchmark report: mine\n") and "at most 3 validations per run" in text
    table = pl.read_csv("reports/mine.csv")
    names = {"mf": "MF-BPR", "lightgcn": "LightGCN", "freedom": "FREEDOM", "simgr": "SiMGR"}
    assert table["model"].to_list() == list(models)
    for model, name in ((m, names[m]) for m in models):
        mean = (metrics[(model, 1)]["test"]["recall@20"] + metrics[(model, 2)]["test"]["recall@20"]) / 2
        row = table.filter(pl.col("model") == model)
        assert row["name"].to_list() == [name] and row["n_seeds"].to_list() == [2] and f"| {name} |" in text
        assert row["recall@20_mean"][0] == pytest.approx(mean, abs=5e-5)  # the table is the mean of the runs' metrics


def test_an_item_table_without_text_columns_is_refused(tmp_path):
    from pipeline.errors import UserError
    from pipeline.settings import validate_params

    params = own_params(tmp_path, with_items=False)
    validate_params(params, complete=True)  # a dataset without item features may list any model: those reading features skip it
    params["datasets"]["mine"]["items"] = "data/raw/mine/items.csv"
    with pytest.raises(UserError, match=r"^params.yaml: datasets.mine.items: an item table without items_text"):
        validate_params(params, complete=True)
