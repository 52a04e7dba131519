"""The params.yaml schema: each bad value is one line naming the key, the value and what is
expected; the schema agrees with the code that reads the params; `simgr check` and the check stage."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from pipeline.check import check_models
from pipeline.errors import UserError
from pipeline.models.registry import model_classes
from pipeline.settings import load_params, read_params_file, summary, validate_params
from pipeline.settings.datasets import FORMATS, ROLES
from pipeline.settings.sections import REQUIRED, Ingest, Params, Train
from stages.cli import app

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = yaml.safe_load((ROOT / "params.yaml").read_text())
N_MODELS = len(SHIPPED["models"])


def _error(mutate, complete: bool = True) -> str:
    """The one-line error of the shipped params changed by ``mutate``: the settings schema, then the
    checks that need the models (what `simgr check` runs)."""
    params = copy.deepcopy(SHIPPED)
    mutate(params)
    with pytest.raises(UserError) as err:
        typed = validate_params(params, complete=complete)
        check_models(typed)
    message = str(err.value)
    assert "\n" not in message
    return message


def test_the_shipped_params_are_valid():
    check_models(validate_params(copy.deepcopy(SHIPPED), complete=True))
    assert summary(SHIPPED) == f"params.yaml: valid ({len(SHIPPED)} sections, 6 datasets, {N_MODELS} models)"
    assert "epoch_cap" not in SHIPPED["run"]  # a dataset needs no key outside its datasets entry


# issue 13, item 3: typos, wrong types, and the message for each
@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda p: p["pst"].update(nuu=0.8), "params.yaml: pst.nuu: unknown key (did you mean 'nu'?)"),
        (lambda p: p["models"]["simgr"].update(lamda_s=5), "params.yaml: models.simgr.lamda_s: unknown key (did you mean 'lambda_s'?)"),
        (lambda p: p["pst"].update(nu="abc"), "params.yaml: pst.nu: 'abc' is not a number (expected a number in [0, 1], or auto (selected on validation))"),
        (lambda p: p["train"].update(lr="fast"), "params.yaml: train.lr: 'fast' is not a number (expected a positive float)"),
        (lambda p: p["train"].update(lr=True), "params.yaml: train.lr: true is not a number (expected a positive float)"),
        (lambda p: p["train"].update(max_validations=2.0), "params.yaml: train.max_validations: 2.0 is not an integer (expected a positive integer)"),
        (lambda p: p["train"].update(patience=-1), "params.yaml: train.patience: -1 is out of range (expected an integer >= 0)"),
        (lambda p: p["pst"].update(nu=1.5), "params.yaml: pst.nu: 1.5 is out of range (expected a number in [0, 1], or auto"),
        (lambda p: p["pst"].update(delta=float("nan")), "params.yaml: pst.delta: nan is not a finite number"),
        (lambda p: p["pst"].update(enabled="yes"), "params.yaml: pst.enabled: 'yes' is not true or false"),
        (lambda p: p["evaluate"].update(topk=[10, 0]), "params.yaml: evaluate.topk[1]: 0 is out of range (expected a positive integer)"),
        (lambda p: p["evaluate"].update(protocol="strikt"), "params.yaml: evaluate.protocol: 'strikt' is not one of mmrec, strict (did you mean 'strict'?)"),
        (lambda p: p["ingest"].update(split="weekly"), "params.yaml: ingest.split: 'weekly' is not one of random, temporal"),
        (lambda p: p["train"].update(device="gpu"), "params.yaml: train.device: 'gpu' is not valid (expected auto, cpu, cuda or cuda:<n>)"),
        (lambda p: p["train"].update(valid_metric="recal@20"),
         "params.yaml: train.valid_metric: 'recal@20' is not valid (expected <metric>@<k>, metric one of recall, ndcg, precision, map)"),
        (lambda p: p.update(zzz={}), "params.yaml: zzz: unknown key (valid keys: " + ", ".join(Params.model_fields) + ")"),
        (lambda p: p["run"].update(epoch_cap={"magazine": 5}), "params.yaml: run.epoch_cap: unknown key"),
        (lambda p: p["datasets"]["movielens"].update(sepp=","), "params.yaml: datasets.movielens.sepp: unknown key (did you mean 'sep'?)"),
        (lambda p: p["datasets"]["magazine"].update(sep=","),
         "params.yaml: datasets.magazine.sep: unknown key for this format (a key of format generic)"),
        (lambda p: p["datasets"]["magazine"].update(format="csv"),
         "params.yaml: datasets.magazine.format: 'csv' is not one of " + ", ".join(FORMATS)),
        (lambda p: p["datasets"]["magazine"].pop("reviews"),
         "params.yaml: datasets.magazine.reviews: missing (expected a file path (relative to the repository root))"),
        (lambda p: p["datasets"]["movielens"].update(fields={"usr": "u"}), "params.yaml: datasets.movielens.fields.usr: unknown key (did you mean 'user'?)"),
        (lambda p: p["datasets"]["movielens"].update(fields={"user": 0}),
         "params.yaml: datasets.movielens.fields.user: 0 is neither a column name nor a 1-based position"),
        (lambda p: p["datasets"]["movielens"].update(items_text={"titel": "name"}),
         "params.yaml: datasets.movielens.items_text: 'titel' is not one of title, brand, description (did you mean 'title'?)"),
        (lambda p: p["datasets"]["movielens"].update(items_text=["title", "title"]),
         "params.yaml: datasets.movielens.items_text: ['title', 'title'] names a column twice"),
        (lambda p: p["datasets"]["movielens"].update(images_pattern="poster.jpg"),
         "params.yaml: datasets.movielens.images_pattern: 'poster.jpg' must hold {item} exactly once"),
        (lambda p: p["datasets"]["movielens"].update(sep=",,"), "params.yaml: datasets.movielens.sep: ',,' is too long (expected one character"),
        (lambda p: p["datasets"].update({"my data": {"reviews": "r.csv"}}), "params.yaml: datasets.my data: 'my data' is not a valid name"),
        (lambda p: p["models"]["base"].update(sga="no"), "params.yaml: models.base.sga: 'no' is not true or false"),
        (lambda p: p["models"]["base"].update(lamda_s=1), "params.yaml: models.base.lamda_s: unknown key (did you mean 'lambda_s'?)"),
        (lambda p: p["models"]["freedom"].update(reg=-1.0), "params.yaml: models.freedom.reg: -1.0 is out of range (expected a float >= 0"),
        (lambda p: p["models"]["freedom"].update(reg="autoo"), "params.yaml: models.freedom.reg: 'autoo' is not a number (expected a float >= 0, or auto"),
        (lambda p: p["models"].update(simgrr={"n_layers": 2}), "params.yaml: models.simgrr: not a model name (did you mean 'simgr'?)"),
        (lambda p: p["models"].update(mine={"variant_of": "simgrr"}), "params.yaml: models.mine.variant_of: 'simgrr' has no entry in models"),
        (lambda p: p["models"].update(mine={"variant_of": "base"}), "params.yaml: models.mine.variant_of: 'base' is itself a variant"),
        (lambda p: p["pst"].update(nu="autoo"), "params.yaml: pst.nu: 'autoo' is not a number (expected a number in [0, 1], or auto"),
        (lambda p: p["synth"].update(n_users=-5), "params.yaml: synth.n_users: -5 is out of range (expected a positive integer)"),
    ],
)
def test_bad_values_are_one_line_naming_key_value_and_expectation(mutate, expected):
    assert _error(mutate).startswith(expected)


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda p: p["run"].update(datasets=["magazin"]), "params.yaml: run.datasets[0]: 'magazin' is not an entry of datasets (did you mean 'magazine'?)"),
        (lambda p: p["run"].update(models_cf=["mf", "lightgcm"]), "params.yaml: run.models_cf[1]: 'lightgcm' is not an entry of models (did you mean 'lightgcn'?)"),
        (lambda p: p["run"].update(seeds=[1, 1]), "params.yaml: run.seeds: 1 is listed twice"),
        (lambda p: p["run"].update(models_mm=["mf"]), "params.yaml: run: model 'mf' is listed twice"),
        (lambda p: p["report"].update(proposed="simgrr"), "params.yaml: report.proposed: 'simgrr' is not an entry of models (did you mean 'simgr'?)"),
        (lambda p: p["models"]["base_sga_pst"].update(sga=False), "params.yaml: models.base_sga_pst: pst / apfi true need sga: true"),
        (lambda p: p["run"].update(models_cf=["mf", "freedom"], models_mm=["lgmrec"]), "params.yaml: run.models_cf: 'freedom' reads ['features', 'knn']: it belongs in run.models_mm"),
        (lambda p: p["tune"]["inherit"].pop("base_sga"), "params.yaml: tune.inherit.base_sga: missing"),
        # issue 22: typos in the keys of spaces and sweeps, candidates a key does not accept, `auto` nobody selects
        (lambda p: p["tune"]["sweeps"]["simgr"]["pst"].update(nux=[0.8]), "params.yaml: tune.sweeps.simgr.pst.nux: not a key of pst (did you mean 'nu'?)"),
        (lambda p: p["tune"]["spaces"]["simgr"].setdefault("pst", {}).update(nux=[0.8]),
         "params.yaml: tune.spaces.simgr.pst.nux: not a key of pst (did you mean 'nu'?)"),
        (lambda p: p["tune"]["spaces"]["mf"]["model"].update(regg=[1e-4]), "params.yaml: tune.spaces.mf.model.regg: not a key of models.mf (did you mean 'reg'?)"),
        (lambda p: p["tune"]["spaces"]["mf"]["train"].update(lrr=[1e-4]), "params.yaml: tune.spaces.mf.train.lrr: not a key of train (did you mean 'lr'?)"),
        (lambda p: p["tune"]["spaces"]["mf"]["model"].update(reg=[-1.0]), "params.yaml: tune.spaces.mf.model.reg[0]: -1.0 is not a value of reg"),
        (lambda p: p["models"]["lightgcn"].update(n_layers="auto"), "params.yaml: models.lightgcn.n_layers is auto, but the study of lightgcn does not search it"),
        (lambda p: p["apfi"].update(q="auto"), "params.yaml: apfi.q is auto, but SiMGR's study"),
        (lambda p: p["neighbors"].update(candidates=5), "params.yaml: neighbors.candidates: 5 is below apfi.q = 20"),
        (lambda p: p["ingest"].update(rating_min=6), "params.yaml: ingest.rating_min: 6 is above ingest.rating_max = 5.0"),
        (lambda p: p["evaluate"].update(topk=[10, 50]), "params.yaml: evaluate.topk: [10, 50] lacks k = 20"),
        (lambda p: p["datasets"]["synthetic"].update(image_dim=32), "params.yaml: datasets.synthetic.image_dim: 32 differs from synth.image_dim = 64"),
        (lambda p: p.pop("train"), "params.yaml: missing section(s) train"),
    ],
)
def test_references_between_sections_are_checked(mutate, expected):
    assert _error(mutate).startswith(expected)


def test_several_problems_name_the_first_and_count_the_rest():
    msg = _error(lambda p: p["train"].update(max_validations=0, lr="fast", emb_dim=1.5))
    assert msg == ("params.yaml: train.max_validations: 0 is out of range (expected a positive integer) "
                   "[2 more problem(s); also train.lr, train.emb_dim]")


def test_stages_check_what_is_there_and_leave_absent_keys_to_the_reader():
    partial = {"run": {"seeds": [1, 2]}, "apfi": {"xi": 0.25}}
    validate_params(partial)  # what a stage reading run.seeds / apfi.xi needs
    with pytest.raises(UserError, match=r"^params.yaml: apfi.xi: 2 is out of range"):
        validate_params({"apfi": {"xi": 2}})
    with pytest.raises(UserError, match=r"^params.yaml: run.datasets: missing"):
        validate_params(partial | {"datasets": {}}, complete=True)


def test_load_params_validates_and_reports_yaml_syntax_with_its_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("pst:\n  nu: 0.5\n  nuu: 0.8\n")
    with pytest.raises(UserError, match=rf"^{path}: pst.nuu: unknown key \(did you mean 'nu'\?\)$"):
        load_params(path)
    path.write_text("pst:\n  nu: [0.5\n")
    with pytest.raises(UserError, match=rf"^{path}:3: not valid YAML"):
        load_params(path)
    path.write_text("- 1\n")
    with pytest.raises(UserError, match="expected a mapping at the top level"):
        load_params(path)


def test_params_with_a_key_written_twice_are_an_error_naming_both_lines(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("pst:\n  nu: 0.5\n  delta: 3.0\n  nu: 0.8\n")  # YAML keys are unique; PyYAML would keep the last
    with pytest.raises(UserError, match=rf"^{path}:4: key 'nu' is written twice in one mapping \(first on line 2"):
        read_params_file(path)


def test_simgr_check_names_a_missing_shipped_file(tmp_path, monkeypatch):
    from stages.check import check

    params = copy.deepcopy(SHIPPED)
    params["run"]["datasets"] = ["movielens"]
    params["datasets"]["movielens"]["reviews"] = "data/raw/movielens/u.dataa"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match=r"^params.yaml: datasets.movielens.reviews: data/raw/movielens/u.dataa not found"):
        check(tmp_path / "params.yaml")


def test_simgr_check_prints_the_summary_or_the_first_problem(tmp_path, monkeypatch, capsys):
    from stages.cli import main

    monkeypatch.chdir(ROOT)
    ok = CliRunner().invoke(app, ["check", "--params", str(ROOT / "params.yaml")])
    assert ok.exit_code == 0, ok.output
    assert ok.output == f"{ROOT / 'params.yaml'}: valid ({len(SHIPPED)} sections, 6 datasets, {N_MODELS} models)\n"
    bad = copy.deepcopy(SHIPPED)
    bad["train"]["lr"] = "fast"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(bad))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["simgr", "check"])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 2
    assert capsys.readouterr().err == "error: params.yaml: train.lr: 'fast' is not a number (expected a positive float)\n"


def test_check_stage_output_is_constant_and_studies_read_no_value_they_search(tmp_path, monkeypatch):
    from stages import check

    monkeypatch.chdir(tmp_path)
    shipped = copy.deepcopy(SHIPPED)
    shipped["run"]["datasets"] = ["synthetic"]  # generated files: nothing to find in this folder
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(shipped))
    check.main()
    first = (tmp_path / "data" / "params.valid").read_bytes()
    inputs = {p.name: p.read_bytes() for p in (tmp_path / "tuning" / "inputs").glob("*.json")}
    assert set(inputs) == {f"{m}.json" for m in SHIPPED["tune"]["spaces"]}
    runs = {m for key, models in shipped["run"].items() if key.startswith("models_") for m in models}
    code = {p.name: json.loads(p.read_text()) for p in (tmp_path / "tuning" / "code").glob("*.json")}
    assert set(code) == {f"{m}.json" for m in runs | set(SHIPPED["tune"]["spaces"])}  # what each model runs of pipeline/models
    assert code["base_sga.json"]["files"] == code["simgr.json"]["files"] and "pipeline/models/sga.py" not in code["mf.json"]["files"]
    changed = copy.deepcopy(shipped)
    changed["pst"]["nu"] = 0.8  # a value SiMGR's study sweeps,
    changed["models"]["simgr"]["reg"] = 1e-3  # one it searches,
    changed["models"]["mf"]["train"]["lr"] = 0.01  # and MF's learning rate, which its study searches
    changed["datasets"].pop("baby")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(changed))
    check.main()
    assert (tmp_path / "data" / "params.valid").read_bytes() == first  # downstream stages do not re-run
    assert {p.name: p.read_bytes() for p in (tmp_path / "tuning" / "inputs").glob("*.json")} == inputs  # no study re-runs
    changed["models"]["simgr"]["tau"] = 0.2  # a value SiMGR's study reads as written, and so does Base's (a variant of SiMGR)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(changed))
    check.main()
    now = {p.name: p.read_bytes() for p in (tmp_path / "tuning" / "inputs").glob("*.json")}
    assert sorted(name for name in inputs if now[name] != inputs[name]) == ["base.json", "simgr.json"]
    changed["pst"]["nuu"] = 0.8
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(changed))
    with pytest.raises(UserError, match="pst.nuu: unknown key"):
        check.main()


# --- the schema agrees with the code that reads the params ------------------------------------


def test_literals_match_the_code_constants():
    from pipeline.evaluation.metrics import METRICS
    from pipeline.evaluation.ranking import PROTOCOLS
    from pipeline.ingest.detect import FORMATS as READERS
    from pipeline.ingest.generic import ROLES as GENERIC_ROLES
    from pipeline.ingest.records import ON_ERROR
    from pipeline.ingest.split import METHODS
    from pipeline.models.simgr import PRECISIONS, SiMGR
    from pipeline.report.benchmark import ABLATION_METRICS
    from pipeline.settings.messages import locate
    from pipeline.settings.validate import REPORT_METRICS

    def choices(*loc):
        return set(locate(Params, loc).choices)

    assert choices("evaluate", "protocol") == set(PROTOCOLS)
    assert choices("ingest", "split") == set(METHODS)
    assert choices("ingest", "on_error") == set(ON_ERROR)
    assert set(locate(SiMGR.Params, ("feature_precision",)).choices) == set(PRECISIONS)
    assert set(FORMATS) == {"auto", *READERS} and ROLES == GENERIC_ROLES
    assert REPORT_METRICS == ABLATION_METRICS
    pattern = Train.model_fields["valid_metric"].metadata[0].pattern
    assert pattern.startswith("^(" + "|".join(METRICS) + ")@")


def test_train_and_ingest_settings_are_the_schema_sections_not_mirrors():
    from pipeline.run.groups import RUN_KEYS
    from pipeline.training.trainer import TrainSettings
    from stages.cli import INGEST

    assert issubclass(TrainSettings, Train) and set(TrainSettings.model_fields) == {*Train.model_fields, "protocol"}
    assert INGEST == {k: f.default for k, f in Ingest.model_fields.items()}  # `simgr ingest`'s option defaults
    from pipeline.settings.sections import Run

    assert RUN_KEYS == tuple(k for k in Run.model_fields if k.startswith("models_"))  # one run list per training group


def _recording(cls):
    """``cls.Params`` recording which of its fields are read (a model reads its hyper-parameters as attributes)."""
    read: set[str] = set()
    fields = set(cls.Params.model_fields)

    def getattribute(self, name):
        if name in fields:
            read.add(name)
        return object.__getattribute__(self, name)

    return type("Recording", (cls.Params,), {"__getattribute__": getattribute}), read


def test_each_model_schema_holds_exactly_the_keys_the_model_reads(planted):
    from dataclasses import replace

    import torch

    from model_mixin import hyperparameters

    for name, cls in model_classes().items():
        recording, read = _recording(cls)
        hp = recording(**dict(hyperparameters(name)))
        data = replace(planted, delta=3.0)
        cls.reads(hp)
        cls.inert_keys(hp, ["image", "text"])
        model = cls(data, hp, 8, torch.device("cpu"))
        model.train()
        model.pre_epoch(1, torch.Generator().manual_seed(0))
        u, i = torch.from_numpy(data.train.user[:8]), torch.from_numpy(data.train.item[:8])
        model.loss(u, i, (i + 1) % data.n_items)
        assert read == set(cls.Params.model_fields), (name, set(cls.Params.model_fields) - read)


def test_every_schema_field_says_what_it_expects():
    from pipeline.run.models import written_schema
    from pipeline.settings.datasets import ENTRIES
    from pipeline.settings.messages import _unwrap, locate

    places = []
    for section, info in Params.model_fields.items():
        schema = _unwrap(info.annotation)[0]
        if isinstance(schema, type) and section != "models":
            places += [(Params, (section, key)) for key in schema.model_fields]
    places += [(Params, ("datasets", "x", tag, key)) for tag, entry in ENTRIES.items() for key in entry.model_fields]
    places += [(written_schema(cls), (key,)) for cls in model_classes().values() for key in cls.Params.model_fields]
    assert len(places) > 100
    assert [loc for schema, loc in places if not locate(schema, loc).description] == []
    assert set(REQUIRED) <= set(Params.model_fields)


def test_floats_written_by_dvc_read_as_numbers(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("train:\n  lr: 1e-05\n  max_validations: 10\npst:\n  delta: 3E0\n")  # ruamel's dump of -S train.lr=1e-5
    assert read_params_file(path) == {"train": {"lr": 1e-05, "max_validations": 10}, "pst": {"delta": 3.0}}
    path.write_text("train:\n  lr: '1e-05'\n")  # quoted: text, as written
    with pytest.raises(UserError, match=r"train.lr: '1e-05' is not a number"):
        validate_params(read_params_file(path), str(path))


def test_a_stage_with_bad_params_prints_one_line_and_exits_2(tmp_path, monkeypatch, capsys):
    from stages import graph
    from stages._main import run_stage

    bad = copy.deepcopy(SHIPPED)
    bad["pst"]["nu"] = "abc"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(bad))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        run_stage(graph.main, ["magazine"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == "error: params.yaml: pst.nu: 'abc' is not a number (expected a number in [0, 1], or auto (selected on validation))\n"


def test_dvc_yaml_reads_no_per_dataset_key_outside_its_datasets_entry():
    """Issue 13 item 1: a new datasets entry must not need a key elsewhere (run.epoch_cap.<ds> did)."""

    def get(params, dotted):
        for part in dotted.split("."):
            params = params[part]  # a KeyError: dvc.yaml tracks a key params.yaml does not have
        return params

    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    listed = [p for st in stages.values() for p in (st.get("do", st).get("params") or []) if isinstance(p, str)]
    per_item = [p for p in listed if "${item" in p]
    # per-model keys are fine (a model's entry and its search space); per-dataset ones only inside datasets.<ds>
    assert per_item and all(p.startswith(("datasets.${item", "models.${item")) for p in per_item), per_item
    for key in (p for p in listed if "${" not in p):
        get(SHIPPED, key)  # every fixed key dvc.yaml tracks exists (a UserError otherwise)
    assert stages["check"]["cmd"] == "python -m stages.check"
    assert "data/params.valid" in stages["download"]["do"]["deps"]  # the check runs first
