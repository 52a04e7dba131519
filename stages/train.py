"""Stage train_*: train one model on one dataset with one seed.

    python -m stages.train <dataset> <model> <seed> [--resume]

Reads params ``train``, ``evaluate.protocol``, ``models`` (and ``pst.delta`` for models that read
the signed graph, passed to them as ``global_delta``); loads only the inputs the model needs;
writes ``models/<dataset>/<model>-<seed>/`` (checkpoint.pt, best.pt, embeddings.pt,
history.json) and the dvclive curves and timing under ``logs/<dataset>/<model>-<seed>/``.
"""

from __future__ import annotations

from pipeline.errors import UserError
from pipeline.log import get_logger
from pipeline.models.registry import build_model, model_class, resolve_config
from pipeline.params import get, load_params
from pipeline.paths import DATA, log_dir, model_dir
from pipeline.training.data import load_train_data
from pipeline.training.trainer import TrainSettings, fit
from stages._main import run_stage

log = get_logger(__name__)
FLAGS = ("--resume",)


def main(dataset: str, model: str, seed: str | int = 1, *flags: str) -> None:
    unknown = [f for f in flags if f not in FLAGS]
    if unknown:
        raise UserError(f"train: unknown option(s) {unknown} (known: {list(FLAGS)})")
    try:
        seed = int(seed)
    except ValueError:
        raise UserError(f"train: seed must be an integer, got {seed!r}") from None
    params = load_params()
    settings = TrainSettings.from_params(params)
    models = get(params, "models")
    kind, cfg = resolve_config(model, models)
    inputs = model_class(kind).inputs(cfg)
    overrides = {"global_delta": float(get(params, "pst.delta"))} if "graph" in inputs else {}
    data = load_train_data(
        DATA / dataset,
        features="features" in inputs,
        knn="knn" in inputs,
        graph="graph" in inputs,
        name=dataset,
    )
    log.info(
        "read %s: %d users, %d items, %d/%d/%d train/valid/test interactions; inputs: %s",
        DATA / dataset, data.n_users, data.n_items, len(data.train), len(data.valid), len(data.test),
        ", ".join(sorted(inputs)) or "interactions only",
    )
    out = model_dir(dataset, model, seed)
    result = fit(
        lambda device: build_model(model, data, models, settings.emb_dim, device, overrides),
        data,
        settings,
        seed,
        out_dir=out,
        log_dir=log_dir(dataset, model, seed),
        resume="--resume" in flags,
    )
    h = result.history
    log.info("wrote %s: best epoch %d of %d, valid %s %.4f", out, h["best_epoch"], h["epochs"],
             settings.valid_metric, h["valid"][settings.valid_metric])


if __name__ == "__main__":
    run_stage(main)
