"""The report stage: every number recomputable from metrics/<ds>/*.json and user_metrics.parquet."""

from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pytest
from scipy import stats

from conftest import shipped_params
from pipeline.report.significance import paired_test
from pipeline.report.tables import marks
from pipeline.schemas import write_table
from test_evaluate_stage import N_ITEMS as N_ITEMS_TOY
from test_evaluate_stage import write_fake_dataset

PARAMS = shipped_params(
    run={"datasets": ["toy"], "seeds": [1, 2, 3], "models_cf": ["mf", "lightgcn"], "models_mm": [], "models_base": ["base"],
         "models_sga": ["base_sga"], "models_pst": [], "models_apfi": [], "models_signed": ["simgr"]},
    evaluate={"protocol": "mmrec", "topk": [10, 20], "batch_size": 64, "device": "cpu"},
    report={"metrics": ["recall@10", "recall@20", "ndcg@10", "ndcg@20"], "proposed": "simgr",
            "ablation": ["base", "base_sga", "base_sga_pst", "base_sga_apfi"]},
    datasets__toy={"format": "generic", "source": "shipped", "reviews": "r.csv"},
    tune__inherit={"base_sga": "simgr"},
)
# SiMGR's study: a search over lr, then a sweep of pst.nu at the best point (the 0.5 row repeats trial 1)
SIMGR_TRIALS = """phase,trial,state,train.lr,pst.nu,valid_recall@20,valid_ndcg@20,test_recall@20,test_ndcg@20,best_epoch,epochs,validations,stop_reason
search,0,complete,0.001,,0.30,0.15,0.28,0.14,5,25,5,early_stopping
search,1,complete,0.005,,0.35,0.17,0.31,0.16,6,26,6,early_stopping
sweep pst.nu,0,complete,0.005,0.3,0.33,0.16,0.32,0.15,4,24,4,early_stopping
sweep pst.nu,1,complete,0.005,0.5,0.35,0.17,0.31,0.16,6,26,6,early_stopping
sweep pst.nu,2,complete,0.005,0.7,0.36,0.18,0.29,0.14,7,27,7,early_stopping
"""


def write_tuning(root):
    for model, values, value, trials in (("mf", {"train.lr": 0.01, "models.mf.reg": 1e-4}, 0.25, 9),
                                         ("simgr", {"train.lr": 0.005, "pst.nu": 0.7}, 0.36, 5)):
        d = root / "tuning" / "toy" / model
        d.mkdir(parents=True)
        (d / "selected.json").write_text(json.dumps({"values": values, "value": value, "trials": trials, "metric": "recall@20"}))
    (root / "tuning" / "toy" / "simgr" / "trials.csv").write_text(SIMGR_TRIALS)
    # pseudo edges: (2, x) for x the first validation item of users 2..4 (+1) and two items nobody has in valid
    inter = pl.read_parquet(root / "data" / "toy" / "ingest" / "interactions.parquet")
    valid = inter.filter(pl.col("split") == "valid").sort("user", "item")
    hits = [valid.filter(pl.col("user") == u)["item"][0] for u in (2, 3, 4)]
    seen = set(zip(inter["user"].to_list(), inter["item"].to_list()))
    misses = [next(i for i in range(N_ITEMS_TOY) if (u, i) not in seen) for u in (2, 3)]
    pseudo = pl.DataFrame({"user": [2, 3, 4, 2, 3], "item": hits + misses, "sign": [1, 1, 1, -1, -1], "weight": [1.0] * 5},
                          schema={"user": pl.Int32, "item": pl.Int32, "sign": pl.Int8, "weight": pl.Float32})
    write_table(pseudo, "pseudo_edges", root / "data" / "toy" / "graph" / "pseudo_edges.parquet")
    # the graph stage's record of the values it used (nu: SiMGR's selection, as params says auto)
    (root / "data" / "toy" / "graph" / "graph.json").write_text(json.dumps(
        {"settings": {"pst.nu": 0.7, "pst.delta": 3.0}, "sources": {"pst.nu": "selected on validation", "pst.delta": "params.yaml"}}))

MODELS = ["mf", "lightgcn", "base", "base_sga", "simgr"]
NAMES = {"mf": "MF-BPR", "lightgcn": "LightGCN", "base": "Base", "base_sga": "Base+SGA", "simgr": "SiMGR"}


@pytest.fixture(scope="module")
def reported(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    write_fake_dataset(root, PARAMS, seed=5)
    write_tuning(root)
    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    from stages.evaluate import main as evaluate_main
    from stages.report import main as report_main

    evaluate_main("toy")
    report_main("toy")
    yield root
    mp.undo()


def _json(root, model, seed):
    return json.loads((root / "metrics" / "toy" / f"{model}-{seed}.json").read_text())


def _cells(md: str, name: str) -> list[str]:
    row = next(line for line in md.splitlines() if line.startswith(f"| {name} |"))
    return [c.strip() for c in row.strip("|").split("|")[1:]]


def test_table_cells_recompute_from_metrics_files(reported):
    md = (reported / "reports" / "toy.md").read_text()
    table2 = md.split("## Table 2")[1].split("##")[0]
    assert "`mmrec` masking" in md and "validation" in md
    for j, metric in enumerate(PARAMS["report"]["metrics"]):
        means = {}
        for model in ["mf", "lightgcn", "simgr"]:  # Table 2 rows: ablation variants are in Figure 3 only
            vals = np.array([_json(reported, model, s)["test"][metric] for s in (1, 2, 3)])
            means[model] = round(vals.mean(), 4)
            text = f"{vals.mean():.4f} ± {vals.std(ddof=1):.4f}"
            cell = _cells(table2, NAMES[model])[j]
            assert text in cell
        order = sorted(set(means.values()), reverse=True)
        for model, mean in means.items():
            cell = _cells(table2, NAMES[model])[j]
            assert cell.startswith("**") == (mean == order[0])
            assert cell.startswith("<u>") == (mean == order[1])
        assert "| Base |" not in table2
        # RelImp of SiMGR over the best of MF-BPR and LightGCN, on unrounded means
        mean = {m: np.mean([_json(reported, m, s)["test"][metric] for s in (1, 2, 3)]) for m in ["mf", "lightgcn", "simgr"]}
        best = max(["mf", "lightgcn"], key=mean.get)
        relimp = (mean["simgr"] / mean[best] - 1) * 100
        assert _cells(table2, "RelImp (SiMGR vs best other)")[j] == f"{relimp:.3f}%"
        assert _cells(table2, "best other")[j] == NAMES[best]


def test_csv_matches_metrics_files(reported):
    csv = pl.read_csv(reported / "reports" / "toy.csv")
    assert csv["model"].to_list() == MODELS
    assert csv["role"].to_list() == ["baseline", "baseline", "ablation", "ablation", "proposed"]
    for row in csv.iter_rows(named=True):
        vals = np.array([_json(reported, row["model"], s)["test"]["ndcg@20"] for s in (1, 2, 3)])
        assert row["ndcg@20_mean"] == round(vals.mean(), 4)
        assert row["ndcg@20_std"] == round(vals.std(ddof=1), 4)
        assert row["n_seeds"] == 3


def test_significance_recomputes_from_user_metrics(reported):
    md = (reported / "reports" / "toy.md").read_text()
    sig = md.split("## Significance")[1].split("##")[0]
    row = next(line for line in sig.splitlines() if line.startswith("| R@20 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    best = {v: k for k, v in NAMES.items()}[cells[1]]

    def seed_avg(model):
        frames = [pl.read_parquet(reported / "eval" / "toy" / f"{model}-{s}" / "user_metrics.parquet").filter(pl.col("split") == "test") for s in (1, 2, 3)]
        return pl.concat(frames).group_by("user").agg(pl.col("recall@20").mean()).sort("user")["recall@20"].to_numpy()

    a, b = seed_avg("simgr"), seed_avg(best)
    assert int(cells[2]) == len(a)
    w = stats.wilcoxon(a, b).pvalue
    t = stats.ttest_rel(a, b).pvalue
    fmt = lambda p: f"{p:.2e}" if p < 1e-3 else f"{p:.4f}"  # noqa: E731
    assert cells[5] == fmt(w) and cells[6] == fmt(t)
    assert cells[3] == f"{a.mean():.4f}"


def test_ablation_table_and_chart(reported):
    md = (reported / "reports" / "toy.md").read_text()
    abl = md.split("## Figure 3")[1].split("\n## ")[0]
    rows = [line.split("|")[1].strip() for line in abl.splitlines() if line.startswith("| ") and "Model" not in line]
    assert rows == ["Base", "Base+SGA", "SiMGR"]  # variants not run are left out, proposed last
    vals = np.array([_json(reported, "base_sga", s)["test"]["recall@20"] for s in (1, 2, 3)])
    assert f"{vals.mean():.4f} ± {vals.std(ddof=1):.4f}" in _cells(abl, "Base+SGA")[0]
    png = (reported / "reports" / "toy_ablation.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_hyperparameter_section_reads_the_studies(reported):
    md = (reported / "reports" / "toy.md").read_text()
    sec = md.split("## Hyper-parameters selected on validation")[1].split("\n## ")[0]
    assert _cells(sec, "MF-BPR") == ["`train.lr` = 0.01, `models.mf.reg` = 0.0001", "9", "0.2500"]
    assert _cells(sec, "Base+SGA")[0] == "SiMGR's selection"
    assert _cells(sec, "LightGCN")[0] == "params.yaml values (no search space)"   # no study file
    sweep = pl.read_csv(reported / "reports" / "plots" / "sweeps" / "toy" / "pst.nu.csv")
    assert sweep.to_dict(as_series=False) == {"value": [0.3, 0.5, 0.7], "valid": [0.33, 0.35, 0.36], "test": [0.32, 0.31, 0.29]}
    fig = md.split("## Figures 4-6")[1].split("\n## ")[0]
    assert "**`pst.nu`** (chosen: 0.7)" in fig and "| 0.7 * | 0.3600 | 0.1800 | 0.2900 | 0.1400 |" in fig
    assert (reported / "reports" / "toy_sensitivity.png").read_bytes()[:4] == b"\x89PNG"


def test_diagnosis_counts_pseudo_edge_hits_against_a_random_free_item(reported):
    from pipeline.report.diagnosis import pseudo_edge_quality

    inter = pl.read_parquet(reported / "data" / "toy" / "ingest" / "interactions.parquet")
    pseudo = pl.read_parquet(reported / "data" / "toy" / "graph" / "pseudo_edges.parquet")
    q = pseudo_edge_quality(inter, pseudo, N_ITEMS_TOY)
    train = inter.filter(pl.col("split") == "train")
    # random baseline: |V_u| / (n_items - |train_u|) (every toy user has 2 validation items), averaged over the edges' users
    p = {u: 2 / (N_ITEMS_TOY - train.filter(pl.col("user") == u).height) for u in (2, 3, 4)}
    assert (q["pseudo_positive"]["edges"], q["pseudo_positive"]["valid_hits"], q["pseudo_positive"]["hit_rate"]) == (3, 3, 1.0)
    assert q["pseudo_positive"]["random_rate"] == pytest.approx((p[2] + p[3] + p[4]) / 3)
    assert (q["pseudo_negative"]["users"], q["pseudo_negative"]["valid_hits"], q["pseudo_negative"]["ratio"]) == (2, 0, 0.0)
    md = (reported / "reports" / "toy.md").read_text()
    diag = md.split("## Diagnosis")[1]
    base = np.mean([_json(reported, "base", s)["valid"]["recall@20"] for s in (1, 2, 3)])
    simgr = np.mean([_json(reported, "simgr", s)["valid"]["recall@20"] for s in (1, 2, 3)])
    delta = simgr - base
    assert f"({'+' if delta >= 0 else ''}{delta:.4f})" in _cells(diag, "SiMGR")[1]
    assert "| pseudo-positive | 3 | 3 | 3 | 1.0000 |" in diag


def test_pseudo_edge_quality_compares_with_free_items_of_the_same_group():
    """Issue 19: pseudo-positive edges go to tail items, so their baseline is a random free *tail* item."""
    from pipeline.report.diagnosis import pseudo_edge_quality

    rows = [(0, 0, "train"), (0, 1, "train"), (0, 4, "valid"), (0, 2, "valid"), (1, 0, "train"), (1, 2, "train"), (1, 3, "valid")]
    inter = pl.DataFrame({"user": [r[0] for r in rows], "item": [r[1] for r in rows], "split": [r[2] for r in rows]})
    pseudo = pl.DataFrame({"user": [0, 1, 1, 0], "item": [4, 5, 1, 3], "sign": [1, 1, -1, -1]})
    tail = np.array([False, False, False, False, True, True])  # items 4, 5
    q = pseudo_edge_quality(inter, pseudo, 6, tail)
    pos, neg = q["pseudo_positive"], q["pseudo_negative"]
    # u0: free tail {4, 5}, validation tail {4}: 1/2; u1: free tail {4, 5}, none: 0 -> 0.25; hits (0, 4) of 2 edges: 0.5
    assert (pos["hit_rate"], pos["group_rate"], pos["ratio"]) == (0.5, 0.25, 2.0) and pos["group"] == "tail"
    # whole catalogue: u0 2 validation items of 4 free, u1 1 of 4 -> 0.375
    assert pos["random_rate"] == pytest.approx(0.375) and pos["ratio_catalogue"] == pytest.approx(0.5 / 0.375)
    # popular {0..3}: u0 free {2, 3}, validation {2}: 1/2; u1 free {1, 3}, validation {3}: 1/2; no hit
    assert (neg["hit_rate"], neg["group_rate"], neg["ratio"], neg["group"]) == (0.0, 0.5, 0.0, "popular")


def test_report_is_byte_reproducible(reported):
    from stages.report import main as report_main

    files = [reported / "reports" / f for f in ("toy.md", "toy.csv", "toy_ablation.png", "plots/curves/toy.csv",
                                                "plots/table2/toy.csv", "plots/ablation/toy.csv", "summary/toy/simgr.json",
                                                "toy_sensitivity.png", "plots/sweeps/toy/pst.nu.csv")]
    first = [f.read_bytes() for f in files]
    mp = pytest.MonkeyPatch()
    mp.chdir(reported)
    try:
        report_main("toy")
    finally:
        mp.undo()
    assert [f.read_bytes() for f in files] == first


def test_validation_curves_align_seeds_by_epoch(reported):
    # fake_history: seed s runs 3 + s epochs, valid R@20 = 0.1 + 0.01 e + 0.001 s; seed 3 validates even epochs only
    curves = pl.read_csv(reported / "reports" / "plots" / "curves" / "toy.csv")
    assert curves.columns == ["model", "name", "role", "epoch", "recall@20", "n_seeds"]
    assert dict(curves.select("model", "role").unique().iter_rows()) == {
        "mf": "baseline", "lightgcn": "baseline", "base": "ablation", "base_sga": "ablation", "simgr": "proposed"}
    assert curves["model"].unique(maintain_order=True).to_list() == ["simgr", "mf", "lightgcn", "base", "base_sga"]  # proposed first
    mf = curves.filter(pl.col("model") == "mf")
    assert mf["name"].unique().to_list() == ["MF-BPR"]
    assert mf["epoch"].to_list() == [1, 2, 3, 4, 5, 6]
    assert mf["n_seeds"].to_list() == [2, 3, 2, 3, 1, 1]
    expected = [(0.111 + 0.112) / 2, (0.121 + 0.122 + 0.123) / 3, (0.131 + 0.132) / 2, (0.141 + 0.142 + 0.143) / 3, 0.152, 0.163]
    assert mf["recall@20"].to_list() == pytest.approx(expected, abs=1e-12)


def test_bar_chart_data_and_summary_metrics_recompute_from_metrics_files(reported):
    table2 = pl.read_csv(reported / "reports" / "plots" / "table2" / "toy.csv")
    assert table2.columns == ["model", "name", "metric", "mean", "std", "n_seeds"]
    assert table2["model"].unique(maintain_order=True).to_list() == ["mf", "lightgcn", "simgr"]
    assert table2.filter(pl.col("model") == "mf")["metric"].to_list() == ["R@10", "R@20", "N@10", "N@20"]
    ablation = pl.read_csv(reported / "reports" / "plots" / "ablation" / "toy.csv")
    assert ablation.select("name", "metric").rows() == [(n, m) for n in ("Base", "Base+SGA", "SiMGR") for m in ("R@20", "N@20")]
    for frame in (table2, ablation):
        for row in frame.iter_rows(named=True):
            metric = {"R@10": "recall@10", "R@20": "recall@20", "N@10": "ndcg@10", "N@20": "ndcg@20"}[row["metric"]]
            vals = np.array([_json(reported, row["model"], s)["test"][metric] for s in (1, 2, 3)])
            assert (row["mean"], row["std"], row["n_seeds"]) == (round(vals.mean(), 4), round(vals.std(ddof=1), 4), 3)
    summaries = sorted(p.name for p in (reported / "reports" / "summary" / "toy").iterdir())
    assert summaries == sorted(f"{m}.json" for m in MODELS)
    for model in MODELS:
        got = json.loads((reported / "reports" / "summary" / "toy" / f"{model}.json").read_text())
        want = {}
        for metric, key in (("recall@20", "R@20"), ("ndcg@20", "N@20")):
            vals = np.array([_json(reported, model, s)["test"][metric] for s in (1, 2, 3)])
            want |= {key: round(vals.mean(), 4), f"{key}_std": round(vals.std(ddof=1), 4)}
        assert got == want | {"n_seeds": 3}


def test_summary_of_one_seed_has_no_std():
    from pipeline.report.plotdata import bars_frame, summary_metrics
    from pipeline.report.tables import summarize

    one = {"recall@20": summarize([0.25]), "ndcg@20": summarize([0.125])}
    assert summary_metrics(one) == {"R@20": 0.25, "R@20_std": None, "N@20": 0.125, "N@20_std": None, "n_seeds": 1}
    bars = bars_frame({"mf": one}, ["mf"], ["recall@20"])
    assert bars.rows() == [("mf", "MF-BPR", "R@20", 0.25, None, 1)]


def test_validation_curves_name_the_bad_file():
    from pipeline.errors import UserError
    from pipeline.report.plotdata import validation_curves

    with pytest.raises(UserError, match=r"models/x/mf-1/history.json: missing list field 'curve'"):
        validation_curves({"mf": [("models/x/mf-1/history.json", {"best_epoch": 1})]})
    with pytest.raises(UserError, match=r"h.json: curve\[1\] has no integer 'epoch'"):
        validation_curves({"mf": [("h.json", {"curve": [{"epoch": 1, "valid": {"recall@20": 0.1}}, {"valid": {}}]})]})
    with pytest.raises(UserError, match=r"h.json: no epoch of 'curve' has a validation 'recall@20'"):
        validation_curves({"mf": [("h.json", {"curve": [{"epoch": 1, "loss": {"bpr": 0.6}}]})]})


def test_sensitivity_frame_sorted_by_value_and_duplicates_refused():
    from pipeline.errors import UserError
    from pipeline.report.plotdata import sensitivity_frame

    frame = sensitivity_frame([0.9, 0.3, 0.5], [0.21, 0.2, 0.23456], [0.19, 0.18, 0.2])
    assert frame.rows() == [(0.3, 0.2, 0.18), (0.5, 0.2346, 0.2), (0.9, 0.21, 0.19)]
    with pytest.raises(UserError, match="magazine pst.nu: parameter value 0.3 appears more than once"):
        sensitivity_frame([0.3, 0.3], [0.1, 0.2], [0.1, 0.2], what="magazine pst.nu")
    with pytest.raises(UserError, match="2 parameter values but 1 validation and 2 test means"):
        sensitivity_frame([0.3, 0.5], [0.1], [0.1, 0.2])


def test_marks_on_rounded_values_share_ties():
    got = marks({"a": 0.12344, "b": 0.12341, "c": 0.1, "d": 0.05, "e": math.nan})
    assert got == {"a": "best", "b": "best", "c": "second", "d": "", "e": ""}


def test_paired_test_hand_computed():
    # five positive differences: exact two-sided Wilcoxon p = 2 / 2^5
    a, b = np.array([1.0, 2, 3, 4, 5]), np.zeros(5)
    res = paired_test(a + np.array([0.1, 0.2, 0.3, 0.4, 0.5]), a)
    assert res.wilcoxon_p == pytest.approx(2 / 32)
    assert res.n_users == 5 and res.mean_a == pytest.approx(3.3) and res.mean_b == pytest.approx(3.0)
    # differences [1..5]: t = mean / (sd / sqrt(n)) = 3 / (sqrt(2.5) / sqrt(5)), df = 4
    t = 3 / (math.sqrt(2.5) / math.sqrt(5))
    assert paired_test(a, b).ttest_p == pytest.approx(2 * stats.t.sf(t, 4))
    same = paired_test(a, a)
    assert math.isnan(same.wilcoxon_p) and math.isnan(same.ttest_p)


def _state(name, nu, r20, error=None, exps=None):
    files = {f"metrics/toy/simgr-{s}.json": {"data": {"test": {"recall@20": r + s / 100, "ndcg@20": r / 2}}} for s, r in zip((1, 2), r20)}
    files["reports/summary/toy/simgr.json"] = {"data": {"R@20": (r20[0] + r20[1] + 0.03) / 2, "N@20": (r20[0] + r20[1]) / 4}}
    data = None if error else {"rev": name, "params": {"params.yaml": {"data": {"pst": {"nu": nu}}}}, "metrics": files}
    return {"rev": name, "name": name, "data": data, "error": error, "experiments": exps}


def test_sweep_table_from_dvc_exp_show(tmp_path, monkeypatch):
    from pipeline.report.sweep import sweep_table
    from stages.sweep_report import main as sweep_main

    exps = [{"revs": [_state("e1", 0.3, (0.1, 0.2)), _state("e2", 0.9, (0.3, 0.5))]},
            {"revs": [_state("e3", 0.3, (0.3, 0.4)), _state("bad", 0.7, (0, 0), error={"msg": "failed"})]}]
    show = [_state("workspace", 0.5, (0.2, 0.2)), _state("HEAD", 0.5, (0.2, 0.2), exps=exps)]
    files = ["metrics/toy/simgr-1.json", "metrics/toy/simgr-2.json"]  # per-run files: mean over them of test.<metric>
    table, skipped = sweep_table(show, "pst.nu", files, ["test.recall@20", "test.ndcg@20"])
    table = table.rename({"test.recall@20": "recall@20", "test.ndcg@20": "ndcg@20"})
    assert skipped == 1
    assert table["pst.nu"].to_list() == [0.3, 0.5, 0.9]
    assert table["n_experiments"].to_list() == [2, 1, 1]  # workspace == HEAD counted once
    # value 0.3: e1 mean recall (0.11 + 0.22) / 2 = 0.165, e3 (0.31 + 0.42) / 2 = 0.365 -> 0.265
    assert table["recall@20"].to_list() == pytest.approx([0.265, (0.21 + 0.22) / 2, (0.31 + 0.52) / 2])
    assert table["ndcg@20"].to_list() == pytest.approx([(0.075 + 0.175) / 2, 0.1, 0.2])

    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("run:\n  seeds: [1, 2]\n")
    (tmp_path / "exp.json").write_text(json.dumps(show))
    sweep_main("exp.json", "toy", "pst.nu")  # reads the summary file, whose means equal the per-run means here
    csv = pl.read_csv(tmp_path / "reports" / "sweeps" / "toy_pst.nu.csv")
    assert csv["recall@20"].to_list() == [0.265, 0.215, 0.415]
    assert csv["ndcg@20"].to_list() == [0.125, 0.1, 0.2]
    assert (tmp_path / "reports" / "sweeps" / "toy_pst.nu.png").read_bytes()[:4] == b"\x89PNG"


def _run(r20: float, n10: float) -> dict:
    test = {"recall@10": r20 / 2, "recall@20": r20, "ndcg@10": n10, "ndcg@20": n10 * 1.5}
    return {"test": test, "n_test_users": 2, "max_epochs": 10, "stop_reason": "early_stopping"}


def _user_frames(values: list[float]) -> list[pl.DataFrame]:
    cols = {m: values for m in ("recall@10", "recall@20", "ndcg@10", "ndcg@20")}
    return [pl.DataFrame({"user": [0, 1], **cols})]


def test_one_seed_shows_plain_values_not_a_missing_std():
    from pipeline.report.benchmark import build_report

    runs = {"mf": [_run(0.2, 0.1)], "simgr": [_run(0.25, 0.125)], "base": [_run(0.125, 0.0625)]}
    users = {"mf": _user_frames([0.1, 0.3]), "simgr": _user_frames([0.2, 0.3]), "base": _user_frames([0.1, 0.1])}
    report = build_report("toy", runs, users, seeds=[1], metrics=["recall@20", "ndcg@10"], proposed="simgr",
                          ablation=["base"], protocol="mmrec")
    assert "±" not in report.markdown and "| -" not in report.markdown
    table2 = report.markdown.split("## Table 2")[1].split("##")[0]
    assert _cells(table2, "MF-BPR") == ["<u>0.2000</u>", "<u>0.1000</u>"]
    assert _cells(table2, "SiMGR") == ["**0.2500**", "**0.1250**"]
    assert _cells(report.markdown.split("## Figure 3")[1], "Base") == ["<u>0.1250</u>", "<u>0.0938</u>"]
    assert "One seed per model: cells are the test metric of that run" in report.markdown
    assert report.table["recall@20_std"].to_list() == [None, None, None]


def test_a_model_with_one_seed_among_several_shows_its_plain_value():
    from pipeline.report.benchmark import build_report

    runs = {"mf": [_run(0.2, 0.1), _run(0.3, 0.1)], "simgr": [_run(0.25, 0.125)]}
    users = {"mf": _user_frames([0.1, 0.3]) * 2, "simgr": _user_frames([0.2, 0.3])}
    md = build_report("toy", runs, users, seeds=[1, 2], metrics=["recall@20"], proposed="simgr", ablation=[],
                      protocol="mmrec").markdown
    table2 = md.split("## Table 2")[1].split("##")[0]
    assert _cells(table2, "MF-BPR") == [f"**0.2500 ± {np.std([0.2, 0.3], ddof=1):.4f}**"]
    assert _cells(table2, "SiMGR") == ["**0.2500**"]
    assert "a model with one seed shows its plain value" in md


def test_sweep_table_reads_a_value_fixed_as_a_one_value_list():
    from pipeline.report.sweep import sweep_table

    def state(name, nu, r20):
        data = {"params": {"params.yaml": {"data": {"tune": {"sweeps": {"simgr": {"pst": {"nu": nu}}}}}}},
                "metrics": {"s.json": {"data": {"R@20": r20}}}}
        return {"rev": name, "data": data, "error": None}

    show = [state("a", [0.3], 0.2), state("b", [0.7], 0.25), state("c", [0.3, 0.7], 0.1)]  # c: a real sweep, skipped
    table, skipped = sweep_table(show, "tune.sweeps.simgr.pst.nu", ["s.json"], ["R@20"])
    assert table["tune.sweeps.simgr.pst.nu"].to_list() == [0.3, 0.7] and table["R@20"].to_list() == [0.2, 0.25]
    assert skipped == 1


def test_pseudo_edge_quality_by_modality_builds_each_modality_alone_and_fused(planted):
    from pipeline.graph.build import signed_graph
    from pipeline.graph.signed import GraphSettings
    from pipeline.report.diagnosis import modality_quality, pseudo_edge_quality
    from pipeline.settings.sections import APFI, PST

    parts = [(split, getattr(planted, split)) for split in ("train", "valid", "test")]
    inter = pl.concat([pl.DataFrame({"user": p.user, "item": p.item, "rating": p.rating, "split": [s] * len(p)}) for s, p in parts])
    settings = GraphSettings(PST(nu=0.5), APFI(xi=0.3, q=4, zeta_pos=0.0, zeta_neg=0.0))
    cands = dict(n_candidates=12, device="cpu", block_size=64, recall_sample=0, seed=0)
    q = modality_quality(inter, planted.features, settings, cands)
    assert list(q) == ["image", "text", "fused"]
    graph, built = signed_graph(inter, planted.features, settings, cands)  # the fused one is the graph stage's
    tail = built.tables["item_groups"][1].sort("item")["tail"].to_numpy()
    assert q["fused"] == pseudo_edge_quality(inter, graph.pseudo, planted.n_items, tail)
    alone, _ = signed_graph(inter, {"text": planted.features["text"]}, settings, cands)
    assert q["text"]["pseudo_positive"]["edges"] == int((alone.pseudo["sign"] == 1).sum())
