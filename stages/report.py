"""Stage `report`: reports/<ds>.md and .csv in the shape of the paper's Table 2 (+ Figure 3 ablation).

Reads ``metrics/<ds>/<model>-<seed>.json`` of every run in params ``run``, for the paired
significance tests ``eval/<ds>/<run>/user_metrics.parquet``, and for the validation curves
``models/<ds>/<run>/history.json``. Writes ``reports/<ds>.md``, ``reports/<ds>.csv``, the ablation
chart ``reports/<ds>_ablation.png``, the data of the default ``dvc plots show`` views
(``reports/plots/{curves,table2,ablation}/<ds>.csv``) and the summary metrics
``reports/summary/<ds>/<model>.json`` (:mod:`pipeline.report.plotdata`).

Usage: python -m stages.report <dataset>
"""

from __future__ import annotations

import shutil

import polars as pl

from pipeline.errors import UserError
from pipeline.log import get_logger
from pipeline.params import get, load_params, read_json, write_json
from pipeline.paths import REPORTS, eval_dir, metrics_file, model_dir, plot_file, summary_dir, summary_file
from pipeline.report.benchmark import ABLATION_METRICS, Report, build_report
from pipeline.report.plotdata import bars_frame, summary_metrics, validation_curves, write_csv
from pipeline.report.plots import grouped_bars
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
    report = build_report(dataset, runs, user_metrics, seeds=seeds, metrics=metrics, proposed=proposed,
                          ablation=ablation, protocol=protocol, valid_metric=get(params, "train.valid_metric", "recall@20"),
                          chart=chart.name)
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / f"{dataset}.md").write_text(report.markdown)
    report.table.write_csv(REPORTS / f"{dataset}.csv", float_precision=4)
    labels = [display(m) for m in report.ablation]
    series = {short(k): ([report.summary[m][k].mean for m in report.ablation], [report.summary[m][k].std for m in report.ablation])
              for k in ABLATION_METRICS}
    spread = "one seed" if all(len(rs) == 1 for rs in runs.values()) else "mean ± std over seeds"
    grouped_bars(chart, labels, series, title=f"Ablation on {dataset} ({spread})")
    log.info("wrote %s, %s, %s", REPORTS / f"{dataset}.md", REPORTS / f"{dataset}.csv", chart)
    write_plot_data(dataset, report, histories, metrics)


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
