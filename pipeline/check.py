"""The checks of params.yaml that need the models: run by ``simgr check`` and the ``check`` stage
after the settings layer's own (:func:`pipeline.settings.validate_params`).

* every ``models.<name>`` entry against its class's schema (a typo, a wrong type: one line);
* every model of a run list in the training group that reads what it reads (and, for SiMGR's
  variants, runs with SiMGR's study: ``tune.inherit``);
* every key of a search space or sweep a key of its section, every candidate a value it accepts;
* every ``auto`` value one that something selects: a key the owner's study searches or sweeps,
  or one that cannot change the model (an inert key), or ``tune.enabled: false`` (then the default);
* the files a shipped dataset of the run names exist.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.errors import UserError
from pipeline.run.groups import group_of, run_models
from pipeline.run.models import model_entry, owner_of
from pipeline.settings.sections import APFI, PST, Params
from pipeline.settings.types import is_auto
from pipeline.tuning.space import check_space, flat_keys

def check_models(params: Params) -> None:
    """One :class:`UserError` line at the first problem of the model entries, run lists, spaces and ``auto`` values."""
    entries = params.models or {}
    for name in sorted(entries, key=lambda n: entries[n].variant_of is not None):  # a model before its variants
        model_entry(params, name)
    tune = params.tune
    inherit = tune.inherit or {}
    for model, group in run_models(params):
        entry = model_entry(params, model)
        family = "simgr" if entry.kind == "simgr" else None
        if entry.kind != model and family is None:
            raise UserError(f"params.yaml: models.{model}: a variant of {entry.kind!r}; only SiMGR has variants with a training "
                            "group (their stage tracks models.simgr): give the entry its own keys instead of variant_of")
        right = group_of(entry.reads(), family)
        if right is not group:
            raise UserError(f"params.yaml: run.{group.key}: {model!r} reads {sorted(entry.reads()) or 'interactions only'}: it belongs "
                            f"in run.{right.key} (each group's training stage declares what its models read)")
        if group.study is not None and model != group.study and inherit.get(model) != group.study:
            raise UserError(f"params.yaml: tune.inherit.{model}: missing: {model!r} in run.{group.key} uses "
                            f"{group.study}'s study (add {model}: {group.study})")
        if group.study is None and model in inherit:
            raise UserError(f"params.yaml: tune.inherit.{model}: {model!r} in run.{group.key} has its own study "
                            f"(tune.spaces.{model}); remove it from tune.inherit or move it to a group that inherits")
    for kind, table in (("spaces", tune.spaces or {}), ("sweeps", tune.sweeps or {})):
        for model, spec in table.items():
            check_space(model_entry(params, model), spec, f"tune.{kind}.{model}")
    if tune.enabled:
        _check_autos(params)


def _searched(params: Params, owner: str) -> set[str]:
    tune = params.tune
    return set(flat_keys(owner, (tune.spaces or {}).get(owner))) | set(flat_keys(owner, (tune.sweeps or {}).get(owner)))


def _check_autos(params: Params) -> None:
    """Every ``auto`` of a run (its model's and the signed graph's, which every dataset's graph stage
    resolves) is selected by some study."""
    for model, _ in run_models(params):
        entry = model_entry(params, model)
        owner = owner_of(params, model)
        searched = _searched(params, owner)
        inert = entry.cls.inert_keys(entry.defaults(), ())
        for key, value in entry.values.items():
            if is_auto(value) and f"models.{owner}.{key}" not in searched and key not in inert:
                raise UserError(f"params.yaml: models.{model}.{key} is auto, but the study of {owner} does not search it "
                                f"(add it to tune.spaces.{owner}, or give it a value)")
        for key, value in entry.train.items():
            if is_auto(value) and f"train.{key}" not in searched:
                raise UserError(f"params.yaml: models.{model}.train.{key} is auto, but the study of {owner} does not search "
                                f"train.{key} (add it to tune.spaces.{owner}.train, or give it a value)")
    searched = _searched(params, "simgr")
    for name, section in (("pst", params.pst or PST()), ("apfi", params.apfi or APFI())):
        for key, value in section:
            if is_auto(value) and f"{name}.{key}" not in searched:
                raise UserError(f"params.yaml: {name}.{key} is auto, but SiMGR's study (tune.spaces.simgr, tune.sweeps.simgr) does "
                                "not select it (the graph stage takes it from there): give it a value or add it to the sweeps")


def check_files(params: Params) -> None:
    """The files a shipped dataset of the run names exist, each as what it must be (a file, or for
    ``images`` a file or a folder)."""
    for name in params.run.datasets:
        entry = params.dataset(name)
        if entry.source != "shipped":
            continue  # synthetic files are generated, the paper's are downloaded, by the download stage
        for key in ("reviews", "meta", "items"):
            path = getattr(entry, key, None)
            if path is None:
                continue
            if not Path(path).exists():
                raise UserError(f"params.yaml: datasets.{name}.{key}: {path} not found (a shipped dataset's files are in the repository)")
            if Path(path).is_dir():
                raise UserError(f"params.yaml: datasets.{name}.{key}: {path} is a folder, expected a file")
        images = getattr(entry, "images", None)
        if images is not None and not Path(images).exists():
            raise UserError(f"params.yaml: datasets.{name}.images: {images} not found")
