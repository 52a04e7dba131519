"""README "Your own data", end to end: a headered ratings CSV and an item-text table in a temporary
repository, one `datasets:` entry (nothing else per dataset), then every stage function in the
order `dvc repro` runs them, to `reports/<name>.md` (issue 13, item 1)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import polars as pl
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
THEMES = {
    "jazz": ["saxophone", "trumpet", "swing", "bebop", "ballads"],
    "garden": ["roses", "soil", "pruning", "seeds", "compost"],
    "cooking": ["pasta", "spices", "baking", "knives", "bread"],
    "travel": ["maps", "trains", "hotels", "beaches", "museums"],
}
N_USERS, N_ITEMS, PER_USER = 60, 40, 12


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


def own_params(root: Path, with_items: bool = True) -> dict:
    """The repository's params.yaml plus the README's steps: one datasets entry and run.datasets;
    a small run (two seeds, two or three cheap models, three epochs, no tuning) so the test stays fast.
    Without an item table there are no item features: interaction-only models only."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["datasets"]["mine"] = {"format": "generic", "source": "shipped", "reviews": "data/raw/mine/ratings.csv"}
    if with_items:
        params["datasets"]["mine"].update(items="data/raw/mine/items.csv", items_text=["title", "description"])
    params["run"].update(datasets=["mine"], seeds=[1, 2], models_cf=["mf", "lightgcn"], models_mm=[], models_sga=[],
                         models_pst=[], models_apfi=[], models_signed=["simgr"] if with_items else [])
    params["train"].update(max_validations=3, valid_every_steps=1, batch_size=256, device="cpu")
    params["tune"]["enabled"] = False  # the studies write empty selections at once (the README's run tunes)
    params["report"]["ablation"] = []
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return params


def _five_core(pairs: set[tuple[str, str]]) -> set[tuple[str, str]]:
    while True:
        deg_u, deg_i = {}, {}
        for u, i in pairs:
            deg_u[u] = deg_u.get(u, 0) + 1
            deg_i[i] = deg_i.get(i, 0) + 1
        kept = {(u, i) for u, i in pairs if deg_u[u] >= 5 and deg_i[i] >= 5}
        if kept == pairs:
            return pairs
        pairs = kept


@pytest.mark.slow
@pytest.mark.parametrize("with_items", [True, False], ids=["ratings+items", "ratings-only"])
def test_own_ratings_csv_to_the_report(tmp_path, monkeypatch, capsys, with_items):
    from stages import check, download, evaluate, features, graph, ingest, neighbors, report, train, tune

    pairs = write_own_data(tmp_path / "data" / "raw" / "mine", with_items)
    params = own_params(tmp_path, with_items)
    monkeypatch.chdir(tmp_path)

    check.main()
    assert capsys.readouterr().out == f"params.yaml: valid ({len(params)} sections, 7 datasets, 12 models)\n"
    download.main("mine")
    ingest.main("mine")
    stats = json.loads(Path("data/mine/ingest/stats.json").read_text())
    expected = _five_core(pairs)
    assert (stats["format"], stats["n_interactions"], stats["n_users"], stats["n_items"]) == (
        "generic", len(expected), len({u for u, _ in expected}), len({i for _, i in expected}))
    assert stats["items"]["without_meta"] == (0 if with_items else stats["n_items"])
    features.main("mine")
    assert json.loads(Path("data/mine/features/features.json").read_text())["modalities"] == (["text"] if with_items else [])
    neighbors.main("mine")
    models = ("mf", "lightgcn", "simgr") if with_items else ("mf", "lightgcn")
    for model in ("mf", "lightgcn", "simgr"):  # SiMGR's study runs for every dataset (the graph stage reads it)
        tune.main("mine", model)
        assert json.loads(Path(f"tuning/mine/{model}/selected.json").read_text())["values"] == {}
    graph.main("mine")
    graph_json = json.loads(Path("data/mine/graph/graph.json").read_text())
    assert graph_json["settings"]["apfi_enabled"] is with_items  # no features, no pseudo edges
    assert graph_json["observed_positive"] + graph_json["observed_negative"] == stats["splits"]["train"]
    runs = [(m, s) for m in models for s in (1, 2)]
    for model, seed in runs:
        train.main("mine", model, seed)
    evaluate.main("mine")
    report.main("mine")

    metrics = {run: json.loads(Path(f"metrics/mine/{run[0]}-{run[1]}.json").read_text()) for run in runs}
    assert {m["n_test_users"] for m in metrics.values()} == {stats["n_users"]}
    assert all(m["epochs"] <= 3 and m["protocol"] == "mmrec" for m in metrics.values())
    text = Path("reports/mine.md").read_text()
    assert text.startswith("# Benchmark report: mine\n") and "at most 3 validations per run" in text
    table = pl.read_csv("reports/mine.csv")
    names = {"mf": "MF-BPR", "lightgcn": "LightGCN", "simgr": "SiMGR"}
    assert table["model"].to_list() == list(models)
    for model, name in ((m, names[m]) for m in models):
        mean = (metrics[(model, 1)]["test"]["recall@20"] + metrics[(model, 2)]["test"]["recall@20"]) / 2
        row = table.filter(pl.col("model") == model)
        assert row["name"].to_list() == [name] and row["n_seeds"].to_list() == [2] and f"| {name} |" in text
        assert row["recall@20_mean"][0] == pytest.approx(mean, abs=5e-5)  # the table is the mean of the runs' metrics


def test_a_dataset_without_item_features_cannot_list_multimodal_models(tmp_path):
    from pipeline.errors import UserError
    from pipeline.settings import validate_params

    params = own_params(tmp_path, with_items=False)
    validate_params(params, complete=True)
    params["run"]["models_signed"] = ["simgr"]
    with pytest.raises(UserError, match=r"^params.yaml: run.models_signed: \['simgr'\] need item features, but datasets.mine names no "
                                        r"item table, metadata or images"):
        validate_params(params, complete=True)
    params["datasets"]["mine"]["items"] = "data/raw/mine/items.csv"
    with pytest.raises(UserError, match=r"^params.yaml: datasets.mine.items: an item table without items_text"):
        validate_params(params, complete=True)
