"""Sensitivity plots (the paper's Figures 4-6) from a ``dvc exp`` sweep; not a DVC stage.

Run a sweep on one dataset, export the experiments, then plot one parameter::

    # Figure 4 (nu, eq. 14), Figure 5 (xi, eq. 15), Figure 6 (zeta+ eq. 19, zeta- eq. 21)
    dvc exp run --queue -S 'run.datasets=[magazine]' -S 'pst.nu=0.3,0.5,0.7,0.9'
    dvc exp run --queue -S 'run.datasets=[magazine]' -S 'apfi.xi=0.05,0.1,0.15,0.2'
    dvc exp run --queue -S 'run.datasets=[magazine]' -S 'apfi.zeta_pos=0.35,0.4,0.45,0.5'
    dvc exp run --queue -S 'run.datasets=[magazine]' -S 'apfi.zeta_neg=0.0,0.1,0.2'
    dvc exp run --run-all --jobs 1
    dvc exp show --json > exp_show.json
    python -m stages.sweep_report exp_show.json magazine pst.nu [simgr]

(Each queued experiment re-runs only the stages whose params changed: graph and the signed
models for ``pst.*``/``apfi.*``. Parameters stay chosen on validation: the plots show how the
test metrics move, they are not used to pick values.)

Reads the model's summary metrics ``reports/summary/<dataset>/<model>.json`` of every experiment
(test metrics, mean over seeds). Writes ``reports/sweeps/<dataset>_<param>.csv`` (one row per
value) and ``.png`` (Recall@20 and NDCG@20 against the value).

Usage: python -m stages.sweep_report <exp_show.json> <dataset> <param> [model]
"""

from __future__ import annotations

from pathlib import Path

from pipeline.log import get_logger
from pipeline.jsonio import read_json
from pipeline.paths import summary_file
from pipeline.report.plots import line_plot
from pipeline.report.sweep import sweep_table
from pipeline.report.tables import short
from stages._main import run_stage

log = get_logger(__name__)

METRICS = ["recall@20", "ndcg@20"]


def main(exp_show: str, dataset: str, param: str, model: str = "simgr") -> None:
    files = [summary_file(dataset, model).as_posix()]
    table, skipped = sweep_table(read_json(exp_show), param, files, [short(m) for m in METRICS])
    table = table.rename({short(m): m for m in METRICS})
    out = Path("reports") / "sweeps"
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{dataset}_{param}"
    table.write_csv(out / f"{stem}.csv", float_precision=4)
    line_plot(out / f"{stem}.png", table[param].to_list(), {short(m): table[m].to_list() for m in METRICS},
              title=f"{model} on {dataset}: test metrics vs {param}", xlabel=param)
    log.info("read %s: %d value(s) of %s, %d experiment state(s) skipped; wrote %s.csv/.png",
             exp_show, table.height, param, skipped, out / stem)


if __name__ == "__main__":
    run_stage(main)
