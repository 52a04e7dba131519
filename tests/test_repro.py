"""The reproducibility contract: fingerprints, comparisons by kind, the rebuild plan, staleness.

The check must pass where only float rounding moved and fail on real changes: a changed split
seed, a changed pst.nu, changed model code or params, a metric beyond its band. Each is shown
here on small fixtures, never by running the pipeline.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from dvc_cli import dvc
from pipeline.graph.apfi import decision_margins
from pipeline.graph.signed import GraphSettings, build_signed_graph
from pipeline.settings.sections import APFI, PST
from pipeline.ingest import download
from pipeline.ingest.dataset import ingest
from pipeline.settings.sections import Ingest
from pipeline.repro import compare, contract, fingerprint
from pipeline.repro.check import stale_stages
from pipeline.repro.plan import make_plan, parse_stage
from pipeline.schemas import validate

ROOT = Path(__file__).resolve().parents[1]
FIX = Path(__file__).parent / "fixtures"


# ----------------------------------------------------------------------------- fingerprints
def test_mix64_is_splitmix64():
    # splitmix64 seeded with 0 first returns 0xE220A8397B1DCDAF (its published first output)
    assert int(fingerprint.mix64(np.array([0])).view(np.uint64)[0]) == 0xE220A8397B1DCDAF


def test_group_hash_is_order_free_and_sensitive():
    g = np.array([0, 0, 1, 1, 1])
    k = np.array([5, 7, 1, 2, 3])
    h = fingerprint.group_hash(g, k, 2)
    perm = np.array([4, 1, 3, 0, 2])
    assert np.array_equal(fingerprint.group_hash(g[perm], k[perm], 2), h)
    assert fingerprint.group_hash(g, np.array([5, 7, 1, 2, 4]), 2)[1] != h[1]
    assert fingerprint.group_hash(g, np.array([5, 7, 1, 2, 4]), 2)[0] == h[0]


def test_ranked_list_margins_by_hand():
    # item 0 (best first): 0.9, 0.8, 0.5, then 0.45 left out -> margin 0.05 at the cut
    # item 1 (least similar first, as popular candidates): 0.1, 0.4, then 0.43 left out -> 0.03
    # item 2: its list holds every candidate (nothing left out) -> no tie possible
    fp = fingerprint.ranked_lists(
        "knn_text", item=np.array([0, 0, 0, 1, 1, 2]), neighbor=np.array([3, 4, 5, 2, 0, 1]),
        score=np.float32([0.9, 0.8, 0.5, 0.1, 0.4, 0.7]), cut_item=np.array([0, 1]), cut_score=np.float32([0.45, 0.43]),
    )
    validate(fp, "fingerprint")
    assert fp["key"].to_list() == [0, 1, 2] and fp["n"].to_list() == [3, 2, 1]
    assert fp["margin"].to_list() == pytest.approx([0.05, 0.03, math.inf], abs=1e-6)
    assert fp["score_sum"].to_list() == pytest.approx([2.2, 0.5, 0.7], abs=1e-6)
    # membership, not order: two neighbours swapping places leave the hash alone, another neighbour does not
    swapped = fingerprint.ranked_lists("knn_text", np.array([0, 0, 0]), np.array([4, 3, 5]), np.float32([0.9, 0.8, 0.5]),
                                       np.array([0]), np.float32([0.45]))
    assert swapped["hash"][0] == fp["hash"][0]
    other = fingerprint.ranked_lists("knn_text", np.array([0, 0, 0]), np.array([4, 3, 6]), np.float32([0.9, 0.8, 0.5]),
                                     np.array([0]), np.float32([0.45]))
    assert other["hash"][0] != fp["hash"][0]


def test_decision_margins_by_hand():
    # Q = 2, zeta = 0.4; user 7: 0.9, 0.5, 0.45 -> |w - zeta| min 0.05, gap w_2 - w_3 = 0.05 ... 0.05
    # user 8: 0.9, 0.41 -> |0.41 - 0.4| = 0.01 (no third candidate)
    users, margins = decision_margins(np.array([7, 7, 7, 8, 8]), np.array([0, 1, 2, 0, 1]), np.array([0.9, 0.5, 0.45, 0.9, 0.41]), 2, 0.4)
    assert users.tolist() == [7, 8]
    assert margins == pytest.approx([0.05, 0.01])


def test_feature_sketch_moves_with_the_vectors():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, 384)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    a = validate(fingerprint.feature_sketch({"text": x}), "feature_sketch")
    assert a.height == 20 and a["norm"].to_numpy() == pytest.approx(1.0, abs=1e-6)
    assert compare.compare_sketch("s", a, fingerprint.feature_sketch({"text": x})).moved == "-"
    noise = rng.standard_normal(x.shape).astype(np.float32)
    small = fingerprint.feature_sketch({"text": x + 1e-7 * noise / np.linalg.norm(noise, axis=1, keepdims=True)})
    assert compare.compare_sketch("s", a, small).ok  # float rounding: well inside FEATURE_TOL
    big = x.copy()
    big[3] = -big[3]  # one item's text changed
    found = compare.compare_sketch("s", a, fingerprint.feature_sketch({"text": big}))
    assert not found.ok and "max |d|" in found.moved
    assert not compare.compare_sketch("s", a, fingerprint.feature_sketch({"text": x[:19]})).ok


# ----------------------------------------------------------------------------- comparisons
def _fp(rows):
    part, key, n, h, s, m = zip(*rows)
    return pl.DataFrame({"part": list(part), "key": pl.Series(key, dtype=pl.Int32), "n": pl.Series(n, dtype=pl.Int32),
                         "hash": pl.Series(h, dtype=pl.Int64), "score_sum": pl.Series(s, dtype=pl.Float64),
                         "margin": pl.Series(m, dtype=pl.Float32)})


def test_fingerprint_rules():
    ref = _fp([("knn", 0, 3, 11, 2.2, 0.05), ("knn", 1, 3, 12, 1.0, 1e-6), ("groups", 0, 5, 99, 0.0, math.nan)])
    assert compare.compare_fingerprint("f", ref, ref).moved == "-"
    rounding = ref.with_columns(score_sum=pl.col("score_sum") + 1e-7)
    assert compare.compare_fingerprint("f", ref, rounding).ok
    tie = ref.with_columns(hash=pl.when(pl.col("key") == 1).then(13).otherwise(pl.col("hash")))
    found = compare.compare_fingerprint("f", ref, tie)
    assert found.ok and "1 of 3 differ at ties" in found.moved  # item 1's list is decided by a 1e-6 margin
    real = ref.with_columns(hash=pl.when(pl.col("key") == 0).then(13).otherwise(pl.col("hash")))
    assert not compare.compare_fingerprint("f", ref, real).ok  # item 0's margin is 0.05: no tie
    exact = ref.with_columns(hash=pl.when(pl.col("part") == "groups").then(1).otherwise(pl.col("hash")))
    assert "exact part" in compare.compare_fingerprint("f", ref, exact).moved
    assert not compare.compare_fingerprint("f", ref, ref.head(2)).ok
    moved = ref.with_columns(score_sum=pl.col("score_sum") + 0.01)
    assert not compare.compare_fingerprint("f", ref, moved).ok


def test_json_rule_allows_only_tie_fields_to_move():
    a = {"pseudo_positive": 10, "observed_negative": 4, "knn": {"text": {"recall_vs_exact": 1.0, "rows": 9}}}
    ties = contract.TIE_FIELDS["graph.json"] + contract.TIE_FIELDS["neighbors.json"]
    assert compare.compare_json("g", a, {**a, "pseudo_positive": 11}, ties).ok
    assert compare.compare_json("g", a, {**a, "knn": {"text": {"recall_vs_exact": 0.99, "rows": 9}}}, ties).ok
    broken = compare.compare_json("g", a, {**a, "observed_negative": 5}, ties)
    assert not broken.ok and broken.moved == "observed_negative: 4 -> 5"
    assert not compare.compare_json("g", a, {**a, "knn": {"text": {"recall_vs_exact": 1.0, "rows": 8}}}, ties).ok


def _fixture_runs():
    runs = {}
    for path in sorted((FIX / "repro" / "metrics").glob("*.json")):
        model, seed = path.stem.rsplit("-", 1)
        runs.setdefault(model, {})[int(seed)] = json.loads(path.read_text())
    return runs


def test_band_is_the_larger_of_the_pooled_and_the_models_own_seed_std():
    runs = _fixture_runs()
    # test recall@20: lightgcn 0.30, 0.32, 0.34 (variance 4e-4), simgr 0.40, 0.40, 0.43 (3e-4);
    # pooled sqrt(3.5e-4) = 0.0187: simgr spreads less and keeps the pooled band, lightgcn its own 0.02
    assert compare.bands(runs)[("test", "recall@20")] == pytest.approx(contract.BAND_FACTOR * math.sqrt(3.5e-4))
    assert compare.bands(runs, "simgr")[("test", "recall@20")] == pytest.approx(contract.BAND_FACTOR * math.sqrt(3.5e-4))
    assert compare.bands(runs, "lightgcn")[("test", "recall@20")] == pytest.approx(contract.BAND_FACTOR * 0.02)
    assert compare.bands(runs, "lightgcn")[("test", "ndcg@20")] == pytest.approx(contract.BAND_FACTOR * 0.01)
    assert compare.bands(runs, "new_model") == compare.bands(runs)  # no committed seeds of its own: pooled
    one_seed = {m: {1: s[1]} for m, s in runs.items()}
    assert compare.bands(one_seed, "simgr")[("test", "recall@20")] == contract.BAND_FLOOR


def test_a_metric_beyond_its_band_fails():
    runs = _fixture_runs()
    band = compare.bands(runs, "simgr")
    ref = runs["simgr"][1]
    width = band[("test", "recall@20")]
    inside = json.loads(json.dumps(ref))
    inside["test"]["recall@20"] += 0.5 * width
    assert compare.compare_metrics("m", ref, inside, band).ok
    beyond = json.loads(json.dumps(ref))
    beyond["test"]["recall@20"] += 1.5 * width
    found = compare.compare_metrics("m", ref, beyond, band)
    assert not found.ok and "test recall@20" in found.moved
    other_users = {**ref, "n_test_users": 99}
    assert "n_test_users" in compare.compare_metrics("m", ref, other_users, band).moved


def test_a_shift_every_run_makes_within_its_band_fails_the_model_mean():
    runs = _fixture_runs()
    sigma = compare.sigmas(runs, "simgr")[("test", "recall@20")]
    n = len(runs["simgr"])
    assert n >= contract.MEAN_MIN_SEEDS

    def moved(offsets):
        out = json.loads(json.dumps(runs))
        out = {m: {int(k): v for k, v in seeds.items()} for m, seeds in out.items()}
        for seed, off in zip(sorted(out["simgr"]), offsets):
            out["simgr"][seed]["test"]["recall@20"] += off * sigma
        return out

    band = compare.bands(runs, "simgr")
    key = f"metrics/fix/simgr-* ({n} seeds)"
    limit = contract.MEAN_FACTOR * math.sqrt(2 / n)  # in sigmas: 3.27 for n = 3
    shifted = moved([3.5] * n)  # every run 3.5 sigma off: inside its 6-sigma band, but the mean is beyond the limit
    assert 3.5 < contract.BAND_FACTOR and 3.5 > limit
    assert all(compare.compare_metrics("m", runs["simgr"][s], shifted["simgr"][s], band).ok for s in shifted["simgr"])
    far = {f.output: f for f in compare.compare_model_means("fix", runs, shifted)}
    assert not far[key].ok and "test recall@20 mean moved" in far[key].moved
    near = {f.output: f for f in compare.compare_model_means("fix", runs, moved([3.0] * n))}
    assert near[key].ok  # 3.0 < 3.27
    scatter = {f.output: f for f in compare.compare_model_means("fix", runs, moved([4.0, -4.0, 1.0][:n]))}
    assert scatter[key].ok  # runs that scatter both ways: the mean stays
    assert all(f.ok for f in compare.compare_model_means("fix", runs, runs))


# ----------------------------------------------------------------------------- real changes
def _ingest_md5(tmp: Path, seed: int) -> dict[str, str]:
    ratings = tmp / "ratings.tsv"
    if not ratings.exists():  # 30 users x 12 items, every user with 12 ratings (so held-out rows exist)
        rng = np.random.default_rng(1)
        ratings.write_text("".join(f"u{u}\ti{i}\t{rng.integers(1, 6)}\t{1000 + 12 * u + i}\n" for u in range(30) for i in range(12)))
    out = tmp / f"seed{seed}-{len(list(tmp.iterdir()))}"
    ingest({"format": "generic", "reviews": str(ratings), "sep": "\t", "header": False,
            "columns": ["user", "item", "rating", "timestamp"]}, Ingest(kcore=5, seed=seed), out)
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(out.glob("*.parquet"))}


def test_a_changed_split_seed_breaks_the_exact_ingest_outputs(tmp_path):
    ref, again, other = _ingest_md5(tmp_path, 999), _ingest_md5(tmp_path, 999), _ingest_md5(tmp_path, 7)
    path = "data/x/ingest/interactions.parquet"
    assert contract.rule_for(path).kind == "exact"
    assert compare.compare_md5(path, ref["interactions.parquet"], again["interactions.parquet"]).ok
    assert not compare.compare_md5(path, ref["interactions.parquet"], other["interactions.parquet"]).ok


def _graph(nu: float) -> pl.DataFrame:
    rng = np.random.default_rng(5)
    n = 60
    inter = pl.DataFrame({
        "user": pl.Series(np.repeat(np.arange(6), 10), dtype=pl.Int32),
        "item": pl.Series(np.tile(np.arange(10), 6), dtype=pl.Int32),
        "rating": pl.Series(rng.integers(1, 6, n), dtype=pl.Float32),
        "timestamp": pl.Series(np.arange(n), dtype=pl.Int64),
        "split": ["train"] * n,
    })
    return build_signed_graph(inter, GraphSettings(PST(nu=nu), APFI(enabled=False))).fingerprint


def test_a_changed_pst_nu_breaks_the_observed_signs():
    path = "data/x/graph/fingerprint.parquet"
    assert contract.rule_for(path).kind == "ties"
    ref = validate(_graph(0.5), "fingerprint")
    assert compare.compare_fingerprint(path, ref, _graph(0.5)).moved == "-"
    found = compare.compare_fingerprint(path, ref, _graph(0.9))
    assert not found.ok and "observed" in found.moved and "exact part differs" in found.moved


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)



@pytest.fixture(scope="module")
def tiny_project(tmp_path_factory):
    """A two-stage DVC project (a model file and a param feed `train`, whose output feeds `score`),
    reproduced and committed: what a clean clone of a consistent commit looks like."""
    root = tmp_path_factory.mktemp("project")
    shutil.copytree(FIX / "repro" / "project", root, dirs_exist_ok=True)
    (root / "dvc.yaml.in").rename(root / "dvc.yaml")  # not named dvc.yaml here: DVC would collect it as part of this project
    _git(root, "init", "-q")
    _git(root, "config", "user.email", "t@t")
    _git(root, "config", "user.name", "t")
    dvc(root, "init", "-q")
    dvc(root, "repro", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "reproduced")
    return root


def _stale(root: Path) -> list[compare.Finding]:
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    return stale_stages(json.loads(dvc(root, "status", "--json") or "{}"), lock)


def test_staleness_ignores_missing_generated_inputs(tiny_project):
    assert _stale(tiny_project) == []
    (tiny_project / "trained.txt").unlink()  # a clean clone has no generated files
    shutil.rmtree(tiny_project / ".dvc" / "cache")
    assert _stale(tiny_project) == []
    dvc(tiny_project, "repro", "-q")


@pytest.mark.parametrize("change", ["model", "param"])
def test_a_changed_model_or_param_is_stale(tiny_project, change):
    target = tiny_project / ("model.py" if change == "model" else "params.yaml")
    before = target.read_text()
    try:
        target.write_text(before.replace("2", "3"))
        found = _stale(tiny_project)
        assert [f.output for f in found] == ["train"] and not found[0].ok
        assert ("model.py modified" if change == "model" else "param lr modified") in found[0].moved
    finally:
        target.write_text(before)


def test_a_hand_edited_committed_output_is_stale(tiny_project):
    target = tiny_project / "score.json"
    before = target.read_text()
    try:
        target.write_text('{"recall": 0.99}\n')
        found = _stale(tiny_project)
        assert [f.output for f in found] == ["score"] and "committed output score.json differs" in found[0].moved
    finally:
        target.write_text(before)


# ----------------------------------------------------------------------------- the contract and the plan
LOCK = yaml.safe_load((ROOT / "dvc.lock").read_text())


def test_every_output_of_the_committed_lock_has_a_rule():
    outs = sorted({o["path"] for st in LOCK["stages"].values() for o in st.get("outs", [])})
    kinds = {contract.rule_for(p).kind for p in outs}
    assert kinds <= {"exact", "sketch", "ties", "band", "derived", "represented", "trusted"}
    for p in outs:
        rule = contract.rule_for(p)
        if rule.kind == "represented":
            assert rule.via.format(ds=contract.dataset_of(p)) in outs, p


def _declared_outputs(stage: dict) -> list[str]:
    paths = []
    for key in ("outs", "metrics", "plots"):
        for entry in stage.get(key, []):
            paths.append(entry if isinstance(entry, str) else next(iter(entry)))
    return paths


def test_every_output_declared_in_dvc_yaml_has_a_rule():
    # the lock lags behind dvc.yaml until the lead regenerates it: check the templated outputs too
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        body = stage.get("do", stage)
        for path in _declared_outputs(body):
            path = path.replace("${item.dataset}", "magazine").replace("${item.model}", "mf").replace("${item.seed}", "1")
            path = path.replace("${item}", "magazine")
            assert "${" not in path, (name, path)
            contract.rule_for(path)  # a KeyError names an output no rule covers
    kinds = {p: contract.rule_for(p).kind for p in _declared_outputs(stages["report"]["do"])}
    assert set(kinds.values()) == {"derived"}
    assert contract.rule_for("reports/summary/magazine").how.startswith("summary of the metrics")
    assert contract.rule_for("metrics/magazine").kind == "band"


def test_every_stage_of_the_committed_lock_is_a_stage_of_dvc_yaml():
    # a lock entry whose stage dvc.yaml no longer defines (a renamed or removed variant) is never
    # checked for staleness, yet the plan would rebuild it: it must be dropped with the stage
    listed = dvc(ROOT, "stage", "list", "--all", "--name-only").split()
    assert listed, "dvc stage list printed nothing"
    orphans = sorted(set(LOCK["stages"]) - set(listed))
    assert not orphans, f"dvc.lock has stages dvc.yaml does not define: {orphans[:5]}"


def test_every_raw_file_a_committed_manifest_lists_is_in_the_checkout():
    # a download stage whose manifest is unchanged is skipped by dvc repro, so a raw file it lists
    # (shipped or generated, like the synthetic dataset's) must come with the clone itself
    manifests = sorted((ROOT / "data" / "raw").glob("*/manifest.json"))
    assert manifests
    for manifest in manifests:
        for name, entry in json.loads(manifest.read_text())["files"].items():
            path = ROOT / entry["path"]
            kind = "folder" if "files" in entry else "file"  # an images folder is one entry (files, bytes, digest)
            assert (path.is_dir() if kind == "folder" else path.is_file()), \
                f"{manifest.relative_to(ROOT)}: {name} {kind} {entry['path']} is not in the checkout"
            assert download.digest(path) == entry["sha256"], entry["path"]


def test_plan_rebuilds_data_and_the_full_matrix_and_one_seed_per_model_elsewhere():
    plan = make_plan(LOCK["stages"], full=["magazine"], seed=0)
    assert make_plan(LOCK["stages"], full=["magazine"], seed=0).rebuilt == plan.rebuilt  # deterministic
    stages = {name: parse_stage(name, e["cmd"]) for name, e in LOCK["stages"].items()}
    data = [n for n, s in stages.items() if s.module in ("check", "download", "ingest", "features", "neighbors", "graph")]
    assert sorted(plan.data) == sorted(data) and plan.data[0] == "check"
    train = {n: s for n, s in stages.items() if s.module == "train"}
    assert {n for n, s in train.items() if s.dataset == "magazine"} <= set(plan.train)
    for ds in {s.dataset for s in train.values()} - {"magazine"}:
        models = {s.args[1] for s in train.values() if s.dataset == ds}
        picked = [r.rsplit("-", 1)[0] for r in plan.sampled[ds]]
        assert sorted(picked) == sorted(models)  # every model once
    assert set(plan.rebuilt).isdisjoint(plan.trusted) and set(plan.rebuilt) | set(plan.trusted) == set(stages)
    assert plan.evaluate == ["evaluate@magazine"] and plan.report == ["report@magazine"]


def test_the_sampled_run_of_a_model_is_the_one_that_ran_the_fewest_epochs():
    lock = {f"train_cf@ds-{m}-{s}": {"cmd": f"python -m stages.train ds {m} {s}"} for m in ("mf", "siren") for s in (1, 2, 3)}
    epochs = {"train_cf@ds-mf-1": 300, "train_cf@ds-mf-2": 120, "train_cf@ds-mf-3": 500,
              "train_cf@ds-siren-1": 80, "train_cf@ds-siren-2": 90, "train_cf@ds-siren-3": 80}
    plan = make_plan(lock, full=[], seed=0, epochs=epochs)
    assert plan.sampled == {"ds": ["mf-2", "siren-1"]}  # the fewest epochs; a tie goes to the lower seed
    partly = {k: v for k, v in epochs.items() if k != "train_cf@ds-mf-2"}
    assert make_plan(lock, full=[], seed=0, epochs=partly).sampled["ds"][0] == make_plan(lock, full=[], seed=0).sampled["ds"][0]


def test_the_budget_leaves_out_sampled_runs_only_and_trusts_them():
    lock = {f"train_cf@{ds}-{m}-{s}": {"cmd": f"python -m stages.train {ds} {m} {s}"}
            for ds in ("full", "other") for m in ("mf", "siren") for s in (1, 2)}
    plan = make_plan(lock, full=["full"], seed=0, epochs={name: 10 + len(name) + int(name[-1]) for name in lock})
    assert plan.sampled == {"other": ["mf-1", "siren-1"]}
    assert plan.required == [f"train_cf@full-{m}-{s}" for m in ("mf", "siren") for s in (1, 2)]
    plan.leave_out(["train_cf@other-siren-1"])
    assert plan.sampled == {"other": ["mf-1"]} and plan.unfinished == ["train_cf@other-siren-1"]
    assert "train_cf@other-siren-1" in plan.trusted and "train_cf@other-siren-1" not in plan.train
    plan.leave_out(["train_cf@other-mf-1"])
    assert plan.sampled == {} and plan.train == plan.required  # no sampled run left: nothing to evaluate
    with pytest.raises(ValueError, match="full dataset"):
        plan.leave_out(["train_cf@full-mf-2"])
