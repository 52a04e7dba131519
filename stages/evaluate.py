"""Stage `evaluate`: full-ranking metrics of every trained run of a dataset, from its embeddings.

    python -m stages.evaluate <dataset> [--runs model-seed,...]

For each run ``<model>-<seed>`` of params ``run`` (:func:`pipeline.run.groups.run_list`):
:func:`pipeline.evaluation.runs.evaluate_run` writes ``metrics/<ds>/<run>.json``,
``eval/<ds>/<run>/recommendations.parquet`` and ``user_metrics.parquet``. ``--runs`` evaluates only
the named runs (the reproducibility check uses it for the training runs it retrains); the other
runs' files are left as they are.
"""

from __future__ import annotations

from pipeline.device import resolve_device
from pipeline.errors import UserError
from pipeline.evaluation.runs import evaluate_run, load_sets
from pipeline.log import get_logger
from pipeline.paths import model_dir
from pipeline.run.groups import run_list
from pipeline.settings import load_params
from stages._main import run_stage

log = get_logger(__name__)


def main(dataset: str, *flags: str) -> None:
    params = load_params()
    params.dataset(dataset)
    ev = params.evaluate
    device = resolve_device(ev.device, "evaluate.device")
    ks = tuple(sorted(set(ev.topk)))
    runs = run_list(params)
    if flags:
        if len(flags) != 2 or flags[0] != "--runs":
            raise UserError(f"evaluate: expected at most '--runs model-seed,...', got {' '.join(flags)!r}")
        wanted = [r for r in flags[1].split(",") if r]
        known = {f"{m}-{s}": (m, s) for m, s in runs}
        unknown = [r for r in wanted if r not in known]
        if unknown:
            raise UserError(f"evaluate --runs: {unknown} are not runs of params.yaml 'run' (model-seed, e.g. {next(iter(known), 'mf-1')})")
        runs = [known[r] for r in wanted]
    missing = [str(model_dir(dataset, m, s)) for m, s in runs if not model_dir(dataset, m, s).is_dir()]
    if missing:
        raise UserError(f"{missing[0]}: run directory not found ({len(missing)} of {len(runs)} runs missing; train them first)")
    sets = load_sets(dataset)
    log.info("evaluating %d run(s) of %s on %s, protocol %s, K %s", len(runs), dataset, device, ev.protocol, list(ks))
    for model, seed in runs:
        evaluate_run(dataset, model, seed, sets, ev.protocol, ks, ev.batch_size, device)


if __name__ == "__main__":
    run_stage(main)
