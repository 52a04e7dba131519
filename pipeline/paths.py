"""Where each stage reads and writes, in one place (the layout ``dvc.yaml`` declares).

    data/raw/<dataset>/                     raw files (shipped, downloaded or generated)
    data/<dataset>/ingest/                  interactions/users/items.parquet, stats.json
    data/<dataset>/features/                vectors/<modality>.npy, features.json
    data/<dataset>/neighbors/               lists/{knn_<modality>,*_candidates,item_groups}.parquet, neighbors.json
    data/<dataset>/graph/                   edges.parquet, thresholds.parquet, graph.json
    models/<dataset>/<model>-<seed>/        best.pt, embeddings.pt, checkpoint.pt, history.json
    logs/<dataset>/<model>-<seed>/          dvclive per-epoch curves and timing (not DVC outputs: timings differ per run)
    eval/<dataset>/<model>-<seed>/          recommendations.parquet, user_metrics.parquet
    metrics/<dataset>/<model>-<seed>.json   test/valid metrics of one run (committed; read by the repro check)
    reports/<dataset>.md / .csv             the Table-2-shaped benchmark report
    reports/plots/<view>/<dataset>.csv      data of the default `dvc plots show` views (curves, table2, ablation)
    reports/plots/sweeps/<dataset>/<key>.csv  SiMGR's sensitivity sweeps from its study (Figures 4-6)
    reports/summary/<dataset>/<model>.json  test R@20 / N@20 mean and std over seeds (the DVC metrics)
    exports/<dataset>/<model>-<seed>/       `simgr export`: recommendations, embeddings, FAISS index (not DVC outputs)
    exports/mmrec/<dataset>/                `simgr export --format mmrec`: the split and features in MMRec's layout
"""

from __future__ import annotations

from pathlib import Path

DATA = Path("data")


def raw_dir(dataset: str) -> Path:
    return DATA / "raw" / dataset


def stage_dir(dataset: str, stage: str) -> Path:
    return DATA / dataset / stage


def run_name(model: str, seed: int | str) -> str:
    return f"{model}-{seed}"


def model_dir(dataset: str, model: str, seed: int | str) -> Path:
    return Path("models") / dataset / run_name(model, seed)


def log_dir(dataset: str, model: str, seed: int | str) -> Path:
    return Path("logs") / dataset / run_name(model, seed)


def eval_dir(dataset: str, model: str, seed: int | str) -> Path:
    return Path("eval") / dataset / run_name(model, seed)


def metrics_file(dataset: str, model: str, seed: int | str) -> Path:
    return Path("metrics") / dataset / f"{run_name(model, seed)}.json"


REPORTS = Path("reports")
#: the default `dvc plots show` views, one CSV per dataset in each (pipeline.report.plotdata)
PLOT_VIEWS = ("curves", "table2", "ablation")


def plot_file(view: str, dataset: str, suffix: str = "") -> Path:
    """``reports/plots/<view>/<dataset><suffix>.csv`` (``suffix`` e.g. ``_pst.nu`` for a sweep)."""
    if view not in PLOT_VIEWS:
        raise ValueError(f"plot view must be one of {PLOT_VIEWS}, got {view!r}")
    return REPORTS / "plots" / view / f"{dataset}{suffix}.csv"


def sweep_dir(dataset: str) -> Path:
    """``reports/plots/sweeps/<dataset>/``: one ``<key>.csv`` per swept params key (e.g. ``pst.nu.csv``)."""
    return REPORTS / "plots" / "sweeps" / dataset


def summary_dir(dataset: str) -> Path:
    return REPORTS / "summary" / dataset


def summary_file(dataset: str, model: str) -> Path:
    return summary_dir(dataset) / f"{model}.json"


def export_dir(dataset: str, model: str, seed: int | str) -> Path:
    """Default folder of ``simgr export``: recommendations, embeddings and FAISS index of one run."""
    return Path("exports") / dataset / run_name(model, seed)


def mmrec_export_dir(dataset: str) -> Path:
    """Default folder of ``simgr export --format mmrec``: MMRec's ``data/<name>/`` layout (data_path ``exports/mmrec``)."""
    return Path("exports") / "mmrec" / dataset
