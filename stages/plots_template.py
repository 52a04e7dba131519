"""Rewrite the offline ``dvc plots show`` page template from the vendored vega builds; not a DVC stage.

Run after updating ``vendor/vega/`` (its README says how):

    python -m stages.plots_template

Writes ``vendor/vega/dvc_plots.html``, which ``.dvc/config`` names as ``plots.html_template``.
"""

from __future__ import annotations

from pipeline.log import get_logger
from pipeline.report.offline import ASSETS, TEMPLATE, write_template
from stages._main import run_stage

log = get_logger(__name__)


def main() -> None:
    path = write_template(TEMPLATE)
    log.info("inlined %s into %s (%d bytes)", ", ".join(ASSETS), path, path.stat().st_size)


if __name__ == "__main__":
    run_stage(main)
