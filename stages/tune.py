"""Stage `tune_*`: select one model's ``auto`` hyper-parameters on validation for one dataset (Optuna).

    python -m stages.tune <dataset> <model> [--resume]

Runs :func:`pipeline.tuning.select.select_on_validation`: each trial is one seeded training run
scored by ``train.valid_metric`` on the validation split (never test); writes
tuning/<dataset>/<model>/trials.csv and selected.json (committed). What the study reads from
params.yaml is ``tuning/inputs/<model>.json`` (written by the check stage), its dvc.yaml dependency.
"""

from __future__ import annotations

from pipeline.errors import UserError
from pipeline.settings import load_params
from pipeline.tuning.select import select_on_validation
from stages._main import run_stage


def main(dataset: str, model: str, *flags: str) -> None:
    unknown = [f for f in flags if f != "--resume"]
    if unknown:
        raise UserError(f"tune: unknown option(s) {unknown} (known: --resume)")
    params = load_params()
    params.dataset(dataset)
    select_on_validation(params, dataset, model, fresh="--resume" not in flags)


if __name__ == "__main__":
    run_stage(main)
