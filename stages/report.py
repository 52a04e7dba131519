"""Stage `report`: reports/<ds>.md and .csv in the shape of the paper's Table 2 (+ Figure 3 ablation).

    python -m stages.report <dataset>

Runs :func:`pipeline.report.dataset.write_dataset_report` (what it reads and writes: its module docstring).
"""

from __future__ import annotations

from pipeline.report.dataset import write_dataset_report
from pipeline.settings import load_params
from stages._main import run_stage


def main(dataset: str) -> None:
    params = load_params()
    params.dataset(dataset)
    write_dataset_report(params, dataset)


if __name__ == "__main__":
    run_stage(main)
