"""The report's hyper-parameter sections: what each model's study selected on validation, and the
signed graph's sensitivity sweeps (the paper's Figures 4-6) from SiMGR's trials table.

Inputs are the committed ``tuning/<ds>/<model>/{selected.json, trials.csv}`` of the tune stages.
A sweep row holds one value of one key at the best point so far (:mod:`pipeline.tuning.study`);
its validation metrics are what the study compared, its test metrics are shown, never selected on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import polars as pl

from pipeline.report.plotdata import sensitivity_frame
from pipeline.report.tables import display, fmt

SWEEP_METRICS = ("recall@20", "ndcg@20")


@dataclass(frozen=True)
class Selection:
    model: str
    owner: str  # whose study (a Figure-3 variant uses SiMGR's)
    values: dict[str, Any]
    value: float | None
    trials: int
    metric: str


def selection(model: str, owner: str, selected: Mapping[str, Any]) -> Selection:
    return Selection(model, owner, dict(selected.get("values") or {}), selected.get("value"), int(selected.get("trials") or 0),
                     str(selected.get("metric") or "recall@20"))


def _value(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def selections_markdown(selections: list[Selection]) -> str:
    """One row per model: the selected values (dotted keys), the study's trials and its best validation score."""
    lines = ["| Model | selected on validation | trials | best valid |", "|---|---|---|---|"]
    for s in selections:
        values = ", ".join(f"`{k}` = {_value(v)}" for k, v in s.values.items()) or "params.yaml values (no search space)"
        if s.owner != s.model:
            lines.append(f"| {display(s.model)} | {display(s.owner)}'s selection | (its study) | |")
            continue
        best = fmt(s.value) if isinstance(s.value, (int, float)) else "-"
        lines.append(f"| {display(s.model)} | {values} | {s.trials} | {best} |")
    return "\n".join(lines)


def sweep_frames(trials: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """key -> its sweep's rows (``value`` and the recorded valid / test metrics), in the sweep's order."""
    if not trials.height or "phase" not in trials.columns:
        return {}
    out = {}
    for phase in dict.fromkeys(trials["phase"].to_list()):
        if not phase.startswith("sweep "):
            continue
        key = phase.removeprefix("sweep ")
        rows = trials.filter((pl.col("phase") == phase) & (pl.col("state") == "complete"))
        cols = [c for c in (f"{s}_{m}" for s in ("valid", "test") for m in SWEEP_METRICS) if c in rows.columns]
        out[key] = rows.select(pl.col(key).alias("value"), *cols)
    return out


def sweeps_markdown(sweeps: dict[str, pl.DataFrame], chosen: Mapping[str, Any]) -> str:
    """A table per swept key: value, validation and test R@20 / N@20 (the chosen value marked)."""
    lines = []
    for key, frame in sweeps.items():
        lines += [f"**`{key}`** (chosen: {_value(chosen.get(key, '-'))})", "",
                  "| value | valid R@20 | valid N@20 | test R@20 | test N@20 |", "|---|---|---|---|---|"]
        for row in frame.iter_rows(named=True):
            mark = " *" if chosen.get(key) == row["value"] else ""
            lines.append(f"| {_value(row['value'])}{mark} | " + " | ".join(
                fmt(row.get(f"{s}_{m}")) if row.get(f"{s}_{m}") is not None else "-" for s in ("valid", "test") for m in SWEEP_METRICS) + " |")
        lines.append("")
    return "\n".join(lines)


def sweep_plot_frames(sweeps: dict[str, pl.DataFrame], metric: str = "recall@20", what: str = "") -> dict[str, pl.DataFrame]:
    """key -> ``value, valid, test`` (``metric`` at each swept value) for the ``dvc plots`` view."""
    return {key: sensitivity_frame(f["value"].to_list(), f[f"valid_{metric}"].to_list(), f[f"test_{metric}"].to_list(),
                                   what=f"{what} {key}".strip())
            for key, f in sweeps.items() if f.height}


def tuning_markdown(selections: list[Selection], sweeps: dict[str, pl.DataFrame], chosen: Mapping[str, Any], *,
                    owner: str, seed: int, chart: str | None = None) -> str:
    """The report's "Hyper-parameters" section: the selections table, then the sweeps of ``owner``'s study."""
    if not sweeps and not any(s.values for s in selections):
        return ("## Hyper-parameters\n\nNo study selected any value (`tune.enabled` is false or no model has a "
                "search space in `tune.spaces`): every model ran at its `params.yaml` values.\n")
    lines = ["## Hyper-parameters selected on validation", "",
             "Each model's study (`tuning/<dataset>/<model>/trials.csv`, Optuna) trained every candidate once "
             f"(seed {seed}) and kept the candidate of highest validation R@20; the test columns of the "
             "trials tables are recorded, never compared. Keys not listed keep their `params.yaml` values.", "",
             selections_markdown(selections), ""]
    if sweeps:
        lines += [f"## Figures 4-6: sensitivity of {display(owner)} to the signed graph", "",
                  f"From {display(owner)}'s study: after the search, one key at a time over the paper's grid at the best "
                  f"point so far (a coordinate search, seed {seed}); each value is one training run, so the curves "
                  "carry one seed's noise (compare with the seed std of Table 2). `*` marks the value kept "
                  "(validation argmax).", ""]
        if chart:
            lines += [f"![sensitivity]({chart})", ""]
        lines.append(sweeps_markdown(sweeps, chosen))
    return "\n".join(lines)


def values_markdown(used: Mapping[str, Mapping[str, Any]], graph: Mapping[str, Any]) -> str:
    """"Values the runs used": per model every hyper-parameter and learning-rate setting of its runs
    (history.json's ``setup``) grouped by where it came from, and the signed graph's (graph.json)."""
    lines = ["## Values the runs used", "",
             "Every value comes from params.yaml as written, or, where params.yaml says `auto`, from the model's study "
             "(selected on validation) or its default (`auto` with `tune.enabled: false`, or a key that cannot change the model "
             "on this dataset). A value written in params.yaml is what runs, whatever a study selected.", "",
             "| Model | selected on validation | set in params.yaml | default |", "|---|---|---|---|"]

    def cell(pairs: list[tuple[str, Any]]) -> str:
        return ", ".join(f"`{k}` = {_value(v)}" for k, v in pairs) or "-"

    for model, setup in used.items():
        if not setup:
            lines.append(f"| {display(model)} | (not recorded: trained before history.json held its set-up) | | |")
            continue
        sources = setup.get("sources", {})
        groups: dict[str, list[tuple[str, Any]]] = {"selected on validation": [], "params.yaml": [], "default": []}
        prefix = f"models.{model}."
        for key, value in (setup.get("hyperparameters") or {}).items():
            groups.setdefault(sources.get(prefix + key, "params.yaml"), []).append((key, value))
        for key in ("lr", "batch_size"):
            source = sources.get(f"{prefix}train.{key}")
            if source in groups:
                groups[source].append((f"train.{key}", (setup.get("train") or {}).get(key)))
        lines.append(f"| {display(model)} | {cell(groups['selected on validation'])} | {cell(groups['params.yaml'])} | "
                     f"{cell(groups['default'])} |")
    settings, sources = graph.get("settings") or {}, graph.get("sources") or {}
    if settings:
        groups = {"selected on validation": [], "params.yaml": [], "default": []}
        for key, value in settings.items():
            groups.setdefault(sources.get(key, "params.yaml"), []).append((key, value))
        lines.append(f"| signed graph (graph stage) | {cell(groups['selected on validation'])} | {cell(groups['params.yaml'])} | "
                     f"{cell(groups['default'])} |")
    return "\n".join(lines) + "\n"
