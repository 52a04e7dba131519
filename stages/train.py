"""Stage train_*: train one model on one dataset with one seed.

    python -m stages.train <dataset> <model> <seed> [--resume]

The run's set-up (:mod:`pipeline.run.setup`): params ``train`` and ``evaluate.protocol``, the
model's entry ``models.<model>`` (its ``auto`` values from its study's selection,
tuning/<dataset>/<owner>/selected.json, ``tune.inherit`` naming the owner of SiMGR's Figure-3
variants), and the inputs its class declares it reads. Writes ``models/<dataset>/<model>-<seed>/``
(checkpoint.pt, best.pt, embeddings.pt, history.json with the values used and their sources) and
the dvclive curves and timing under ``logs/<dataset>/<model>-<seed>/``. A model that reads item
features on a dataset without any writes only ``skipped.json`` saying so. The run folder is not
written atomically as a whole: it holds the checkpoint ``--resume`` continues from (each of its
files is replaced atomically; DVC removes the folder before it re-runs the stage).
"""

from __future__ import annotations

from pipeline.atomic import writable_dir
from pipeline.errors import UserError
from pipeline.log import get_logger
from pipeline.paths import log_dir, model_dir
from pipeline.run.setup import final_run, load_data, skip_reason, train
from pipeline.settings import load_params
from pipeline.skipped import write_skipped
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
    params.dataset(dataset)
    spec = final_run(params, dataset, model)
    out = writable_dir(model_dir(dataset, model, seed))
    reason = skip_reason(spec)
    if reason:
        write_skipped(out, reason)
        log.warning("%s-%s on %s skipped: %s (wrote %s)", model, seed, dataset, reason, out / "skipped.json")
        return
    selected = {k: v for k, v in spec.sources.items() if v != "params.yaml"}
    log.info("%s: values not written in params.yaml: %s", model, selected or "none")
    data = load_data(spec)
    log.info("read data/%s: %d users, %d items, %d/%d/%d train/valid/test interactions; inputs: %s", dataset, data.n_users,
             data.n_items, len(data.train), len(data.valid), len(data.test), ", ".join(sorted(spec.reads)) or "interactions only")
    h = train(spec, data, seed, out_dir=out, log_dir=log_dir(dataset, model, seed), resume="--resume" in flags).history
    log.info("wrote %s: best epoch %d of %d, valid %s %.4f", out, h["best_epoch"], h["epochs"], spec.settings.valid_metric,
             h["valid"][spec.settings.valid_metric])


if __name__ == "__main__":
    run_stage(main)
