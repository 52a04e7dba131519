"""Stage ``synth``: the synthetic Amazon-2014-format raw files of the ``synthetic`` dataset.

    python -m stages.synth

Writes ``data/raw/synthetic/{reviews_Synthetic_5.json.gz, meta_Synthetic.json.gz,
image_features_Synthetic.b}`` from params ``synth`` (seeded, byte-reproducible). They are DVC
outputs, so a clean clone, ``dvc exp run --temp`` and queued experiments regenerate or check
them out like any other output.
"""

from __future__ import annotations

from pipeline.log import get_logger
from pipeline.params import get, load_params
from pipeline.paths import raw_dir
from pipeline.synth import write_synthetic
from stages._main import run_stage

log = get_logger(__name__)


def main() -> None:
    synth = get(load_params(), "synth")
    written = write_synthetic(raw_dir("synthetic"), **synth)
    log.info("wrote %s", ", ".join(str(p) for p in written.values()))


if __name__ == "__main__":
    run_stage(main)
