"""Stage `report`: reports/<ds>.md and .csv in the shape of the paper's Table 2 (+ Figure 3 ablation).

Reads ``metrics/<ds>/<model>-<seed>.json`` of every run in params ``run`` and, for the paired
significance tests, ``eval/<ds>/<run>/user_metrics.parquet``. Writes ``reports/<ds>.md``,
``reports/<ds>.csv`` and the ablation chart ``reports/<ds>_ablation.png``.

Usage: python -m stages.report <dataset>
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from pipeline.errors import UserError
from pipeline.log import get_logger
from pipeline.params import get, load_params, read_json
from pipeline.paths import eval_dir, metrics_file
from pipeline.report.benchmark import ABLATION_METRICS, build_report
from pipeline.report.plots import grouped_bars
from pipeline.report.tables import display, short
from pipeline.schemas import read_table
from stages._main import run_stage
from stages.evaluate import run_list

log = get_logger(__name__)

REPORTS = Path("reports")


def main(dataset: str) -> None:
    params = load_params()
    protocol = get(params, "evaluate.protocol")
    metrics = list(get(params, "report.metrics"))
    proposed = get(params, "report.proposed")
    ablation = list(get(params, "report.ablation", []))
    seeds = [int(s) for s in get(params, "run.seeds")]
    runs: dict[str, list[dict]] = {}
    user_metrics: dict[str, list[pl.DataFrame]] = {}
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


if __name__ == "__main__":
    run_stage(main)
