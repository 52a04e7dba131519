"""Stage `features`: item feature matrices of one dataset.

    python -m stages.features <dataset>

Reads data/<ds>/ingest/items.parquet (and the image / MMRec feature files the dataset names),
writes data/<ds>/features/vectors/<modality>.npy, data/<ds>/features/features.json and the
committed sketch data/<ds>/features/fingerprint.parquet (docs/reproducibility.md). The vectors
folder is built in a temporary sibling and renamed over the old one (:mod:`pipeline.atomic`).
Wall-clock time goes to logs/<ds>/features/timing.json (not a DVC output).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from pipeline.atomic import atomic_dir
from pipeline.device import resolve_device
from pipeline.features.build import build_features
from pipeline.jsonio import write_json
from pipeline.log import get_logger
from pipeline.paths import stage_dir
from pipeline.repro.fingerprint import feature_sketch
from pipeline.schemas import read_table, write_table
from pipeline.settings import load_params
from stages._main import run_stage

log = get_logger(__name__)


def main(dataset: str) -> None:
    params = load_params()
    entry = params.dataset(dataset)
    started = time.perf_counter()
    items_path = stage_dir(dataset, "ingest") / "items.parquet"
    items = read_table(items_path, "items")
    log.info("read %d items from %s", items.height, items_path)
    out = stage_dir(dataset, "features")
    device = resolve_device(params.features.device, "features.device")
    with atomic_dir(out / "vectors") as vectors_dir:  # replaced as a whole, only when every modality is built
        report = build_features(
            items,
            entry.model_dump(exclude_none=True),
            vectors_dir,
            text_model=params.features.text_model,
            batch_size=params.features.batch_size,
            device=device,
            dataset=dataset,
        )
    write_json(report, out / "features.json")
    vectors = {path.stem: np.load(path) for path in sorted((out / "vectors").glob("*.npy"))}
    write_table(feature_sketch(vectors), "feature_sketch", out / "fingerprint.parquet")
    log.info("wrote %s and %s (the sketch the reproducibility check compares across machines)",
             out / "features.json", out / "fingerprint.parquet")
    write_json(
        {"seconds": round(time.perf_counter() - started, 2), "device": device, "n_items": items.height},
        Path("logs") / dataset / "features" / "timing.json",
    )


if __name__ == "__main__":
    run_stage(main)
