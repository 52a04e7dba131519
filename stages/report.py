"""Stage `report`: reports/<ds>.md and .csv in the shape of the paper's Table 2 (+ Figure 3 ablation).

Reads ``metrics/<ds>/<model>-<seed>.json`` of every run in params ``run``, for the paired
significance tests ``eval/<ds>/<run>/user_metrics.parquet``, for the validation curves
``models/<ds>/<run>/history.json``, for the hyper-parameter sections each model's
``tuning/<ds>/<model>/selected.json`` and SiMGR's ``trials.csv`` (its sweeps), and for the
diagnosis the ingest interactions and the graph's ``pseudo_edges.parquet``. Writes
``reports/<ds>.md``, ``reports/<ds>.csv``, the charts ``reports/<ds>_ablation.png`` and
``reports/<ds>_sensitivity.png``, the data of the default ``dvc plots show`` views
(``reports/plots/{curves,table2,ablation}/<ds>.csv``, ``reports/plots/sweeps/<ds>/<key>.csv``)
and the summary metrics ``reports/summary/<ds>/<model>.json`` (:mod:`pipeline.report.plotdata`).

Usage: python -m stages.report <dataset>
"""

from __future__ import annotations

import shutil

import polars as pl

from pipeline.errors import UserError
from pipeline.log import get_logger
from pipeline.params import get, load_params, read_json, write_json
from pipeline.paths import DATA, REPORTS, eval_dir, metrics_file, model_dir, plot_file, summary_dir, summary_file, sweep_dir
from pipeline.report.benchmark import ABLATION_METRICS, Report, build_report
from pipeline.report.diagnosis import ablation_deltas, diagnosis_markdown, pseudo_edge_quality
from pipeline.report.plotdata import bars_frame, summary_metrics, validation_curves, write_csv
from pipeline.report.plots import grouped_bars, sweep_panels
from pipeline.report.tuning import selection, sweep_frames, sweep_plot_frames, tuning_markdown
from pipeline.tuning.selection import SELECTED, TRIALS, study_dir
from pipeline.report.tables import display, short
from pipeline.schemas import read_table
from stages._main import run_stage
from stages.evaluate import run_list

log = get_logger(__name__)


def main(dataset: str) -> None:
    params = load_params()
    protocol = get(params, "evaluate.protocol")
    metrics = list(get(params, "report.metrics"))
    proposed = get(params, "report.proposed")
    ablation = list(get(params, "report.ablation", []))
    seeds = [int(s) for s in get(params, "run.seeds")]
    runs: dict[str, list[dict]] = {}
    user_metrics: dict[str, list[pl.DataFrame]] = {}
    histories: dict[str, list[tuple[str, dict]]] = {}
    for model, seed in run_list(params):
        path = metrics_file(dataset, model, seed)
        m = read_json(path)
        if m.get("protocol") != protocol:
            raise UserError(f"{path}: evaluated with protocol {m.get('protocol')!r}, params evaluate.protocol is {protocol!r} (re-run the evaluate stage)")
        missing = [k for k in set(metrics) | set(ABLATION_METRICS) if k not in m.get("test", {})]
        if missing:
            raise UserError(f"{path}: test metrics lack {sorted(missing)} (evaluate.topk must cover report.metrics)")
        runs.setdefault(model, []).append(m)
        um = read_table(eval_dir(dataset, model, seed) / "user_metrics.parquet", "user_metrics")
        user_metrics.setdefault(model, []).append(um.filter(pl.col("split") == "test"))
        history = model_dir(dataset, model, seed) / "history.json"
        histories.setdefault(model, []).append((str(history), read_json(history)))
    if not runs:
        raise UserError("params.yaml run: no models to report")
    log.info("read metrics of %d run(s) of %d model(s) for %s", sum(map(len, runs.values())), len(runs), dataset)

    chart = REPORTS / f"{dataset}_ablation.png"
    tuned = bool(get(params, "tune.enabled", False))
    report = build_report(dataset, runs, user_metrics, seeds=seeds, metrics=metrics, proposed=proposed,
                          ablation=ablation, protocol=protocol, valid_metric=get(params, "train.valid_metric", "recall@20"),
                          chart=chart.name, tuned=tuned)
    REPORTS.mkdir(parents=True, exist_ok=True)
    sections = [report.markdown, hyperparameter_section(dataset, params, list(runs), proposed)]
    if proposed in runs and ablation and ablation[0] in runs:
        sections.append(diagnosis_section(dataset, runs, ablation[0], [*ablation[1:], proposed]))
    (REPORTS / f"{dataset}.md").write_text("\n".join(s.rstrip("\n") + "\n" for s in sections if s))
    report.table.write_csv(REPORTS / f"{dataset}.csv", float_precision=4)
    labels = [display(m) for m in report.ablation]
    series = {short(k): ([report.summary[m][k].mean for m in report.ablation], [report.summary[m][k].std for m in report.ablation])
              for k in ABLATION_METRICS}
    spread = "one seed" if all(len(rs) == 1 for rs in runs.values()) else "mean ± std over seeds"
    grouped_bars(chart, labels, series, title=f"Ablation on {dataset} ({spread})")
    log.info("wrote %s, %s, %s", REPORTS / f"{dataset}.md", REPORTS / f"{dataset}.csv", chart)
    write_plot_data(dataset, report, histories, metrics)


def hyperparameter_section(dataset: str, params: dict, models: list[str], proposed: str) -> str:
    """Selected values per model (a variant: its owner's study, params tune.inherit) and the
    proposed model's sweeps, with their plot data and chart."""
    inherit = dict(get(params, "tune.inherit", {}) or {})
    selections, read = [], 0
    for model in models:
        owner = inherit.get(model, model)
        path = study_dir(dataset, owner) / SELECTED
        if not path.exists():
            log.info("%s: no %s (no study of %s): its row says params.yaml values", dataset, path, owner)
            selections.append(selection(model, owner, {}))
            continue
        selections.append(selection(model, owner, read_json(path)))
        read += 1
    trials_path = study_dir(dataset, proposed) / TRIALS
    trials = pl.read_csv(trials_path) if trials_path.exists() and trials_path.stat().st_size else pl.DataFrame()
    sweeps = sweep_frames(trials)
    shutil.rmtree(sweep_dir(dataset), ignore_errors=True)  # no file of a key no longer swept
    chart = None
    if sweeps:
        selected = next((s.values for s in selections if s.model == proposed), {})
        chosen = {key: selected.get(key, get(params, key, None)) for key in sweeps}
        frames = sweep_plot_frames(sweeps, what=dataset)
        for key, frame in frames.items():
            write_csv(frame, sweep_dir(dataset) / f"{key}.csv")
        chart = REPORTS / f"{dataset}_sensitivity.png"
        sweep_panels(chart, {k: (f["value"].to_list(), {"valid": f["valid"].to_list(), "test": f["test"].to_list()})
                             for k, f in frames.items()}, chosen, title=f"{display(proposed)} on {dataset}: R@20 per swept value")
        log.info("read %s: %d sweep(s) %s; wrote %s and %s/*.csv", trials_path, len(sweeps), list(sweeps), chart, sweep_dir(dataset))
    else:
        chosen = {}
    log.info("read %d selected.json file(s) of %d model(s)", read, len(models))
    return tuning_markdown(selections, sweeps, chosen, owner=proposed, seed=int(get(params, "tune.seed", 0)),
                           chart=chart.name if chart else None)


def diagnosis_section(dataset: str, runs: dict[str, list[dict]], base: str, models: list[str]) -> str:
    """Validation deltas of the signed parts over Base and the quality of the committed pseudo edges."""
    deltas = ablation_deltas(runs, base, [base, *models])
    pseudo_path = DATA / dataset / "graph" / "pseudo_edges.parquet"
    quality = None
    if pseudo_path.exists():
        interactions = read_table(DATA / dataset / "ingest" / "interactions.parquet", "interactions")
        n_items = read_table(DATA / dataset / "ingest" / "items.parquet", "items").height
        pseudo = read_table(pseudo_path, "pseudo_edges")
        quality = pseudo_edge_quality(interactions, pseudo, n_items)
        log.info("read %s (%d pseudo edges) and %d interactions: validation hit rates %s", pseudo_path, pseudo.height,
                 interactions.height, {k: round(v["hit_rate"], 4) for k, v in quality.items()})
    return diagnosis_markdown(deltas, quality, base)


def write_plot_data(dataset: str, report: Report, histories: dict[str, list[tuple[str, dict]]], metrics: list[str]) -> None:
    """The default `dvc plots show` views' CSVs and the per-model summary metrics of one dataset."""
    roles = dict(zip(report.table["model"], report.table["role"]))
    # the proposed model first: the chart's first colour, drawn thicker, at the top of the legend
    order = sorted(histories, key=lambda m: roles.get(m) != "proposed")
    curves, skipped = validation_curves({m: histories[m] for m in order}, roles)
    write_csv(curves, plot_file("curves", dataset))
    write_csv(bars_frame(report.summary, report.table_models, metrics), plot_file("table2", dataset))
    write_csv(bars_frame(report.summary, report.ablation, list(ABLATION_METRICS)), plot_file("ablation", dataset))
    shutil.rmtree(summary_dir(dataset), ignore_errors=True)  # no file of a model no longer in params `run`
    for model, summary in report.summary.items():
        write_json(summary_metrics(summary), summary_file(dataset, model))
    log.info("read %d history file(s): %d curve point(s) of %d model(s) (%d epoch row(s) without validation skipped); "
             "wrote %s, %s, %s and %d summary file(s) in %s", sum(map(len, histories.values())), curves.height,
             len(histories), skipped, plot_file("curves", dataset), plot_file("table2", dataset),
             plot_file("ablation", dataset), len(report.summary), summary_dir(dataset))


if __name__ == "__main__":
    run_stage(main)
