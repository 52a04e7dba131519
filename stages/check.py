"""Stage ``check``: the whole params.yaml validated before any other stage runs, and what each study reads.

    python -m stages.check

Runs the settings schema and cross-section checks (:func:`pipeline.settings.load_params`), then
the checks that need the models (:mod:`pipeline.check`), prints the summary and writes
``data/params.valid`` (constant bytes: the data stages depend on it so that DVC runs the check
first, and rewriting it re-runs nothing downstream) and ``tuning/inputs/<model>.json``, the
params values each study reads (:mod:`pipeline.tuning.inputs`; a study stage depends on its file,
so it re-runs exactly when those change, never for a key it searches), and ``tuning/code/<model>.json``,
the files of ``pipeline/models`` each run model executes (:mod:`pipeline.models.fingerprint`; its
study and training stages depend on that file, so editing one model re-runs that model alone).
"""

from __future__ import annotations

from pathlib import Path

from pipeline.atomic import atomic_file
from pipeline.check import check_files, check_models
from pipeline.jsonio import write_json
from pipeline.log import get_logger
from pipeline.models.fingerprint import CODE_DIR, code_file, fingerprint
from pipeline.run.groups import run_models
from pipeline.run.models import model_entry
from pipeline.settings import PARAMS_FILE, Params, load_params, summary
from pipeline.tuning.inputs import INPUTS_DIR, inputs_file, study_inputs, study_models
from stages._main import run_stage

log = get_logger(__name__)
OUTPUT = Path("data") / "params.valid"
CONTENT = "params.yaml passed `python -m stages.check` (pipeline/settings, pipeline/check.py); constant, so nothing downstream re-runs.\n"


def check(path: str | Path = PARAMS_FILE) -> tuple[Params, str]:
    """The validated params of ``path`` and the one-line summary (a UserError at the first problem)."""
    params = load_params(path)
    check_models(params)
    check_files(params)
    return params, summary(params, str(path))


def main() -> None:
    params, line = check()
    print(line)
    with atomic_file(OUTPUT) as tmp:
        tmp.write_text(CONTENT)
    models = study_models(params)
    for model in models:
        write_json(study_inputs(params, model), inputs_file(model))
    for stale in INPUTS_DIR.glob("*.json"):
        if stale.stem not in models:
            stale.unlink()
    runs = sorted({m for m, _ in run_models(params)} | set(models))
    for model in runs:
        write_json(fingerprint(model, model_entry(params, model).cls.__module__), code_file(model))
    for stale in CODE_DIR.glob("*.json"):
        if stale.stem not in runs:
            stale.unlink()
    log.info("wrote %s, the inputs of %d studies in %s and the code of %d models in %s", OUTPUT, len(models), INPUTS_DIR,
             len(runs), CODE_DIR)


if __name__ == "__main__":
    run_stage(main)
