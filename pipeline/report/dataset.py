"""A dataset's report from its evaluated runs: what the report stage writes (reports/<ds>.md and the rest).

Reads ``metrics/<ds>/<model>-<seed>.json`` of every run in params ``run``, for the paired
significance tests ``eval/<ds>/<run>/user_metrics.parquet``, for the validation curves and the
values each run used ``models/<ds>/<run>/history.json``, for the hyper-parameter sections each
model's ``tuning/<ds>/<model>/selected.json`` and SiMGR's ``trials.csv`` (its sweeps), and for the
diagnosis the ingest interactions and the graph's ``pseudo_edges.parquet``. Writes
``reports/<ds>.md``, ``reports/<ds>.csv``, the charts ``reports/<ds>_ablation.png`` and
``reports/<ds>_sensitivity.png``, the data of the default ``dvc plots show`` views
(``reports/plots/{curves,table2,ablation}/<ds>.csv``, ``reports/plots/sweeps/<ds>/<key>.csv``)
and the summary metrics ``reports/summary/<ds>/<model>.json`` (:mod:`pipeline.report.plotdata`).
A skipped run (a model that cannot run on the dataset) is listed as such and left out of the tables.
"""

from __future__ import annotations

import shutil
from typing import Any

import polars as pl

from pipeline.atomic import atomic_dir, atomic_file
from pipeline.errors import UserError
from pipeline.jsonio import read_json, write_json
from pipeline.log import get_logger
from pipeline.paths import DATA, REPORTS, eval_dir, metrics_file, model_dir, plot_file, summary_dir, summary_file, sweep_dir
from pipeline.report.benchmark import ABLATION_METRICS, Report, build_report
from pipeline.data import load_vectors
from pipeline.graph.build import candidate_settings
from pipeline.graph.signed import GraphSettings
from pipeline.report.diagnosis import ablation_deltas, diagnosis_markdown, modality_quality, pseudo_edge_quality
from pipeline.report.plotdata import bars_frame, summary_metrics, validation_curves, write_csv
from pipeline.report.plots import grouped_bars, sweep_panels
from pipeline.report.tables import display, short
from pipeline.report.tuning import selection, sweep_frames, sweep_plot_frames, tuning_markdown, values_markdown
from pipeline.run.groups import run_list
from pipeline.run.models import owner_of
from pipeline.run.selection import SELECTED, TRIALS, study_dir
from pipeline.schemas import read_table
from pipeline.settings.sections import APFI, PST, Params

log = get_logger(__name__)


def write_dataset_report(params: Params, dataset: str) -> None:
    """Write every report output of ``dataset`` (see the module docstring)."""
    protocol = params.evaluate.protocol
    metrics, proposed, ablation = list(params.report.metrics), params.report.proposed, list(params.report.ablation)
    seeds = [int(s) for s in params.run.seeds]
    runs: dict[str, list[dict]] = {}
    user_metrics: dict[str, list[pl.DataFrame]] = {}
    histories: dict[str, list[tuple[str, dict]]] = {}
    skipped: dict[str, str] = {}
    for model, seed in run_list(params):
        path = metrics_file(dataset, model, seed)
        m = read_json(path)
        if m.get("protocol") != protocol:
            raise UserError(f"{path}: evaluated with protocol {m.get('protocol')!r}, params evaluate.protocol is {protocol!r} (re-run the evaluate stage)")
        if "skipped" in m:
            skipped[model] = m["skipped"]
            continue
        missing = [k for k in set(metrics) | set(ABLATION_METRICS) if k not in m.get("test", {})]
        if missing:
            raise UserError(f"{path}: test metrics lack {sorted(missing)} (evaluate.topk must cover report.metrics)")
        runs.setdefault(model, []).append(m)
        um = read_table(eval_dir(dataset, model, seed) / "user_metrics.parquet", "user_metrics")
        user_metrics.setdefault(model, []).append(um.filter(pl.col("split") == "test"))
        history = model_dir(dataset, model, seed) / "history.json"
        histories.setdefault(model, []).append((str(history), read_json(history)))
    if not runs:
        raise UserError(f"params.yaml run: no model ran on {dataset}" + (f" (skipped: {', '.join(skipped)})" if skipped else ""))
    log.info("read metrics of %d run(s) of %d model(s) for %s%s", sum(map(len, runs.values())), len(runs), dataset,
             f"; skipped {sorted(skipped)}" if skipped else "")

    chart = REPORTS / f"{dataset}_ablation.png"
    report = build_report(dataset, runs, user_metrics, seeds=seeds, metrics=metrics, proposed=proposed,
                          ablation=[m for m in ablation if m in runs], protocol=protocol, valid_metric=params.train.valid_metric,
                          chart=chart.name, tuned=params.tune.enabled)
    REPORTS.mkdir(parents=True, exist_ok=True)
    sections = [report.markdown, skipped_markdown(skipped), hyperparameter_section(dataset, params, histories, proposed)]
    if proposed in runs and ablation and ablation[0] in runs:
        sections.append(diagnosis_section(dataset, runs, ablation[0], [m for m in [*ablation[1:], proposed] if m in runs], params))
    with atomic_file(REPORTS / f"{dataset}.md") as tmp:
        tmp.write_text("\n".join(s.rstrip("\n") + "\n" for s in sections if s))
    with atomic_file(REPORTS / f"{dataset}.csv") as tmp:
        report.table.write_csv(tmp, float_precision=4)
    labels = [display(m) for m in report.ablation]
    series = {short(k): ([report.summary[m][k].mean for m in report.ablation], [report.summary[m][k].std for m in report.ablation])
              for k in ABLATION_METRICS}
    spread = "one seed" if all(len(rs) == 1 for rs in runs.values()) else "mean ± std over seeds"
    grouped_bars(chart, labels, series, title=f"Ablation on {dataset} ({spread})")
    log.info("wrote %s, %s, %s", REPORTS / f"{dataset}.md", REPORTS / f"{dataset}.csv", chart)
    write_plot_data(dataset, report, histories, metrics)


def skipped_markdown(skipped: dict[str, str]) -> str:
    if not skipped:
        return ""
    lines = ["## Models that did not run on this dataset", ""]
    lines += [f"- {display(model)}: {reason}" for model, reason in skipped.items()]
    return "\n".join(lines) + "\n"


def hyperparameter_section(dataset: str, params: Params, histories: dict[str, list[tuple[str, dict]]], proposed: str) -> str:
    """The values each model's runs used and where they came from (params.yaml, the study's selection on
    validation, a default), each study's trials, and the proposed model's sweeps with their plot data and chart."""
    selections, used, read = [], {}, 0
    for model, runs in histories.items():
        owner = owner_of(params, model)
        path = study_dir(dataset, owner) / SELECTED
        selections.append(selection(model, owner, read_json(path) if path.exists() else {}))
        read += path.exists()
        used[model] = runs[0][1].get("setup") or {}
    graph_path = DATA / dataset / "graph" / "graph.json"
    graph = read_json(graph_path) if graph_path.exists() else {}
    trials_path = study_dir(dataset, proposed) / TRIALS
    trials = pl.read_csv(trials_path) if trials_path.exists() and trials_path.stat().st_size else pl.DataFrame()
    sweeps = sweep_frames(trials)
    chart = None
    chosen = {key: graph.get("settings", {}).get(key) for key in sweeps}
    frames = sweep_plot_frames(sweeps, what=dataset) if sweeps else {}
    if frames:
        with atomic_dir(sweep_dir(dataset)) as staging:  # replaced as a whole: no file of a key no longer swept
            for key, frame in frames.items():
                write_csv(frame, staging / f"{key}.csv")
    else:
        shutil.rmtree(sweep_dir(dataset), ignore_errors=True)
    if sweeps:
        chart = REPORTS / f"{dataset}_sensitivity.png"
        sweep_panels(chart, {k: (f["value"].to_list(), {"valid": f["valid"].to_list(), "test": f["test"].to_list()})
                             for k, f in frames.items()}, chosen, title=f"{display(proposed)} on {dataset}: R@20 per swept value")
        log.info("read %s: %d sweep(s) %s; wrote %s and %s/*.csv", trials_path, len(sweeps), list(sweeps), chart, sweep_dir(dataset))
    log.info("read %d selected.json file(s) of %d model(s) and %s", read, len(histories), graph_path)
    return (tuning_markdown(selections, sweeps, chosen, owner=proposed, seed=params.tune.seed, chart=chart.name if chart else None)
            + "\n" + values_markdown(used, graph))


def diagnosis_section(dataset: str, runs: dict[str, list[dict]], base: str, models: list[str], params: Params) -> str:
    """Validation deltas of the signed parts over Base, the quality of the committed pseudo edges and,
    with several modalities, of those each modality alone would give at the graph's settings."""
    deltas = ablation_deltas(runs, base, [base, *models])
    pseudo_path = DATA / dataset / "graph" / "pseudo_edges.parquet"
    quality = by_modality = None
    if pseudo_path.exists():
        interactions = read_table(DATA / dataset / "ingest" / "interactions.parquet", "interactions")
        n_items = read_table(DATA / dataset / "ingest" / "items.parquet", "items").height
        pseudo = read_table(pseudo_path, "pseudo_edges")
        groups_path = DATA / dataset / "graph" / "candidates" / "item_groups.parquet"
        tail = read_table(groups_path, "item_groups").sort("item")["tail"].to_numpy() if groups_path.exists() else None
        quality = pseudo_edge_quality(interactions, pseudo, n_items, tail)
        log.info("read %s (%d pseudo edges) and %d interactions: validation hit rates %s", pseudo_path, pseudo.height,
                 interactions.height, {k: round(v["hit_rate"], 4) for k, v in quality.items()})
        vec_dir = DATA / dataset / "features" / "vectors"
        vectors = load_vectors(vec_dir) if vec_dir.is_dir() else {}
        graph = read_json(DATA / dataset / "graph" / "graph.json")
        if len(vectors) > 1 and graph.get("settings", {}).get("apfi.enabled"):
            values = graph["settings"]
            settings = GraphSettings(PST(**{k[4:]: v for k, v in values.items() if k.startswith("pst.")}),
                                     APFI(**{k[5:]: v for k, v in values.items() if k.startswith("apfi.")}))
            by_modality = modality_quality(interactions, vectors, settings, candidate_settings(params.neighbors))
            log.info("pseudo-edge quality by modality (hit rate / same-group baseline): %s",
                     {m: {k: round(v["ratio"], 2) for k, v in q.items()} for m, q in by_modality.items()})
    return diagnosis_markdown(deltas, quality, base, by_modality)


def write_plot_data(dataset: str, report: Report, histories: dict[str, list[tuple[str, dict]]], metrics: list[str]) -> None:
    """The default `dvc plots show` views' CSVs and the per-model summary metrics of one dataset."""
    roles = dict(zip(report.table["model"], report.table["role"]))
    # the proposed model first: the chart's first colour, drawn thicker, at the top of the legend
    order = sorted(histories, key=lambda m: roles.get(m) != "proposed")
    curves, skipped = validation_curves({m: histories[m] for m in order}, roles)
    write_csv(curves, plot_file("curves", dataset))
    write_csv(bars_frame(report.summary, report.table_models, metrics), plot_file("table2", dataset))
    write_csv(bars_frame(report.summary, report.ablation, list(ABLATION_METRICS)), plot_file("ablation", dataset))
    with atomic_dir(summary_dir(dataset)) as staging:  # replaced as a whole: no file of a model no longer in params `run`
        for model, summary in report.summary.items():
            write_json(summary_metrics(summary), staging / summary_file(dataset, model).name)
    log.info("read %d history file(s): %d curve point(s) of %d model(s) (%d epoch row(s) without validation skipped); "
             "wrote %s, %s, %s and %d summary file(s) in %s", sum(map(len, histories.values())), curves.height,
             len(histories), skipped, plot_file("curves", dataset), plot_file("table2", dataset),
             plot_file("ablation", dataset), len(report.summary), summary_dir(dataset))
