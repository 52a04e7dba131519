"""Stage ``check``: the whole params.yaml validated before any other stage runs.

    python -m stages.check

Runs :mod:`pipeline.settings`' schema and cross-section checks asking for every required section
and key (``simgr check`` does the same), prints the summary, and writes ``data/params.valid``. That
file's bytes never change: the data stages depend on it so that DVC runs the check first, and
rewriting it re-runs nothing downstream.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.params import PARAMS_FILE, load_params
from pipeline.settings import summary
from stages._main import run_stage

OUTPUT = Path("data") / "params.valid"
CONTENT = "params.yaml passed `python -m stages.check` (pipeline/settings); constant, so nothing downstream re-runs.\n"


def check(path: str | Path = PARAMS_FILE) -> str:
    """Validate ``path`` completely; the one-line summary (a UserError at the first problem)."""
    return summary(load_params(path, complete=True), str(path))


def main() -> None:
    print(check())
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(CONTENT)


if __name__ == "__main__":
    run_stage(main)
