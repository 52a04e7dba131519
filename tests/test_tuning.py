"""Hyper-parameter studies: spaces, the grid, two workers sharing one study, sweeps, the selection rule,
and the committed tables (every selected value is its table's validation argmax)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from pipeline.errors import UserError
from pipeline.run.selection import read_selected
from pipeline.settings import validate_params
from pipeline.settings.sections import SpaceSections
from pipeline.tuning.space import Space, parse_space, parse_sweeps
from pipeline.tuning.study import best_row, grid_points, run_search, run_study, select, table_rows, trials_table
from pipeline.tuning.trial import TrialResult

ROOT = Path(__file__).resolve().parents[1]


def spec(sections: dict) -> SpaceSections:
    """A ``tune.spaces.<model>`` entry as the params schema reads it."""
    return SpaceSections.model_validate(sections)


class Bowl:
    """A known objective: the value is highest at lr 0.005, reg 1e-4, nu 0.7 (picklable, for workers)."""

    def __init__(self, *args):
        pass

    def __call__(self, values, report=None):
        lr, reg = values.get("train.lr", 0.001), values.get("models.mf.reg", 1e-4)
        nu = values.get("pst.nu", 0.5)
        value = 1.0 - abs(np.log10(lr / 0.005)) - abs(np.log10(reg / 1e-4)) - abs(nu - 0.7)
        return TrialResult(float(value), 3, 9, 3, "early_stopping", {"recall@20": value, "ndcg@20": value / 2},
                           {"recall@20": value - 0.1, "ndcg@20": 0.0})


def test_spaces_mirror_params_sections():
    space = parse_space("mf", spec({"train": {"lr": [0.001, 0.01]}, "model": {"reg": [1e-5, 1e-4, 1e-3]}}), max_trials=24)
    assert space.values == {"train.lr": [0.001, 0.01], "models.mf.reg": [1e-5, 1e-4, 1e-3]}
    assert (space.size, space.exhaustive, space.n_trials) == (6, True, 6)
    assert parse_space("mf", spec({"train": {"lr": [1, 2, 3]}}), max_trials=2).n_trials == 2  # TPE past the budget
    assert grid_points(space)[:2] == [{"train.lr": 0.001, "models.mf.reg": 1e-5}, {"train.lr": 0.001, "models.mf.reg": 1e-4}]
    for bad, message in [({"trian": {"lr": [1]}}, r"tune.spaces.mf.trian: unknown key \(did you mean 'train'\?\)"),
                         ({"train": {"lr": []}}, "tune.spaces.mf.train.lr: .* too short"), ({"train": 3}, "not a mapping")]:
        with pytest.raises(UserError, match=message):  # the params schema says where
            validate_params({"tune": {"spaces": {"mf": bad}}})
    with pytest.raises(UserError, match="repeat"):
        parse_space("mf", spec({"train": {"lr": [1, 1]}}), max_trials=24)
    with pytest.raises(UserError, match="either searched or swept"):
        parse_sweeps("mf", spec({"train": {"lr": [1, 2]}}), space)
    assert list(parse_sweeps("simgr", spec({"pst": {"nu": [0.3]}, "apfi": {"xi": [0.1, 0.2]}}), space)) == ["pst.nu", "apfi.xi"]


def test_two_workers_share_one_study_and_run_every_grid_point_once(tmp_path):
    space = parse_space("mf", spec({"train": {"lr": [0.001, 0.005, 0.01]}, "model": {"reg": [1e-5, 1e-4, 1e-3]}}), max_trials=24)
    study = run_study(Bowl, space, name="t", storage_spec="journal", journal=tmp_path / "t.journal", seed=0, workers=2)
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(done) == 9 and len({tuple(sorted(t.params.items())) for t in done}) == 9  # no point twice, none missed
    rows = table_rows(study, space, "search")
    assert [r["values"] for r in rows] == grid_points(space)  # grid order, whoever ran what
    assert select(rows)["values"] == {"train.lr": 0.005, "models.mf.reg": 1e-4}


def test_sweeps_move_the_best_point_one_key_at_a_time(tmp_path):
    space = parse_space("mf", spec({"train": {"lr": [0.001, 0.005]}}), max_trials=24)
    rows = run_search(Bowl, space, {"pst.nu": [0.3, 0.5, 0.7, 0.9]}, name="s", storage_spec="journal",
                      journal=tmp_path / "s.journal", seed=0, workers=1, defaults={"pst.nu": 0.5})
    sweep = [r for r in rows if r["phase"] == "sweep pst.nu"]
    assert [r["values"]["pst.nu"] for r in sweep] == [0.3, 0.5, 0.7, 0.9]  # the curve, in the sweep's order
    shared = next(r for r in sweep if r["values"]["pst.nu"] == 0.5)
    assert shared["trial"] == best_row([r for r in rows if r["phase"] == "search"])["trial"]  # not run again
    best = select(rows)
    assert best["values"] == {"train.lr": 0.005, "pst.nu": 0.7} and best["phase"] == "sweep pst.nu"
    table = trials_table(rows, ["train.lr", "pst.nu"], "recall@20")
    assert table.columns[:5] == ["phase", "trial", "state", "train.lr", "pst.nu"] and "test_recall@20" in table.columns


def test_ties_go_to_the_first_row_in_table_order():
    rows = [{"state": "complete", "value": 0.5, "trial": 3, "phase": "search", "values": {"a": 1}},
            {"state": "complete", "value": 0.5, "trial": 1, "phase": "search", "values": {"a": 2}},
            {"state": "fail", "value": None, "trial": 2, "phase": "search", "values": {"a": 3}}]
    assert select(rows)["values"] == {"a": 1}
    assert select([rows[2]]) == {}


def test_read_selected_names_bad_files(tmp_path):
    path = tmp_path / "selected.json"
    with pytest.raises(UserError, match="not found"):
        read_selected(path)
    path.write_text('{"values": {"epochs": 3}}')
    with pytest.raises(UserError, match="not a tunable params key"):
        read_selected(path)
    path.write_text("{")
    with pytest.raises(UserError, match="invalid JSON"):
        read_selected(path)


def _committed_studies():
    return sorted(p.parent for p in (ROOT / "tuning").glob("*/*/selected.json"))


@pytest.mark.parametrize("study", _committed_studies(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_committed_selection_is_the_validation_argmax_of_its_table(study):
    selected = json.loads((study / "selected.json").read_text())
    if not selected["values"]:
        assert selected["trials"] == 0
        return
    table = pl.read_csv(study / "trials.csv")
    metric = f"valid_{selected['metric']}"
    done = table.filter(pl.col("state") == "complete")
    best = done.row(int(np.argmax(done[metric].to_numpy())), named=True)  # argmax: the first of equal values
    assert best[metric] == pytest.approx(selected["value"], abs=1e-12)
    for key, value in selected["values"].items():
        if best[key] is None:  # a key the best trial ran at the value its own sweep kept: one of that sweep's best rows
            sweep = table.filter((pl.col("phase") == f"sweep {key}") & (pl.col("state") == "complete"))
            top = sweep.filter(pl.col(metric) == sweep[metric].max())[key].to_list()
            assert any(v == pytest.approx(value) for v in top), (key, value, top)
        else:
            assert best[key] == pytest.approx(value), key
    assert selected["trials"] == table.height


def test_a_written_value_runs_and_auto_takes_the_selection():
    """Issue 22: what params.yaml writes is what runs; `auto` is the study's selection (or the default)."""
    from pipeline.run.setup import prepare
    from pipeline.settings import load_params

    params = load_params(ROOT / "params.yaml")
    plain = prepare(params, "magazine", "lightgcn", selection={"train.lr": 0.005, "models.lightgcn.reg": 1e-5})
    assert (plain.settings.lr, plain.hp.reg, plain.hp.n_layers) == (0.005, 1e-5, 2)  # lr and reg auto, n_layers written
    assert plain.sources["models.lightgcn.reg"] == "selected on validation" and plain.sources["models.lightgcn.n_layers"] == "params.yaml"
    authors = prepare(params, "magazine", "siren", selection={"models.siren.reg": 0.1})  # SiReN's own lr 5e-3, batch 1024
    assert (authors.settings.lr, authors.settings.batch_size, authors.hp.reg) == (0.005, 1024, 0.1)
    written = params.model_copy(update={"models": {**params.models, "lightgcn": params.models["lightgcn"].model_copy(
        update={"reg": 1e-3})}})  # -S models.lightgcn.reg=1e-3
    assert prepare(written, "magazine", "lightgcn", selection={"train.lr": 0.005, "models.lightgcn.reg": 1e-5}).hp.reg == 1e-3
    with pytest.raises(UserError, match="models.lightgcn.reg is auto, but the study's selection has no models.lightgcn.reg"):
        prepare(params, "magazine", "lightgcn", selection={"train.lr": 0.005})
    off = params.model_copy(update={"tune": params.tune.model_copy(update={"enabled": False})})
    defaults = prepare(off, "magazine", "lightgcn")  # tuning off: every auto at its default, the lr of the train section
    assert (defaults.hp.reg, defaults.settings.lr) == (1e-4, params.train.lr)
    trial = prepare(params, "magazine", "simgr", candidates={"train.lr": 0.005, "pst.nu": 0.8}, searched=frozenset({"train.lr", "pst.nu", "apfi.xi"}))
    assert (trial.settings.lr, trial.graph.pst.nu, trial.graph.apfi.xi, trial.hp.reg) == (0.005, 0.8, 0.1, 1e-4)  # unswept: defaults


def test_a_study_leaves_out_keys_the_model_declares_inert():
    from model_mixin import hyperparameters
    from pipeline.models.lgmrec import LGMRec
    from pipeline.models.mf import MF

    space = parse_space("lgmrec", spec({"train": {"lr": [0.001, 0.005]}, "model": {"cl_weight": [1e-4, 1e-3, 1e-2]}}), max_trials=24)
    assert LGMRec.inert_keys(hyperparameters("lgmrec"), ["text"]) == {"cl_weight"}
    assert MF.inert_keys(hyperparameters("mf"), ["text"]) == frozenset()
    kept = space.without({"models.lgmrec.cl_weight"})
    assert kept.values == {"train.lr": [0.001, 0.005]} and kept.n_trials == 2
