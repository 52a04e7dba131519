"""Stage `features`: item feature matrices of one dataset.

    python -m stages.features <dataset>

Reads data/<ds>/ingest/items.parquet (and the image / MMRec feature files the dataset names),
writes data/<ds>/features/vectors/<modality>.npy and data/<ds>/features/features.json.
Wall-clock time goes to logs/<ds>/features/timing.json (not a DVC output).
"""

from __future__ import annotations

import time
from pathlib import Path

from pipeline.errors import UserError
from pipeline.features.build import build_features
from pipeline.features.device import resolve_device
from pipeline.log import get_logger
from pipeline.params import get, load_params, write_json
from pipeline.paths import stage_dir
from pipeline.schemas import read_table
from stages._main import run_stage

log = get_logger(__name__)


def main(dataset: str) -> None:
    params = load_params()
    datasets = get(params, "datasets")
    if dataset not in datasets:
        raise UserError(f"params.yaml: unknown dataset '{dataset}'; known: {sorted(datasets)}")
    started = time.perf_counter()
    items_path = stage_dir(dataset, "ingest") / "items.parquet"
    items = read_table(items_path, "items")
    log.info("read %d items from %s", items.height, items_path)
    out = stage_dir(dataset, "features")
    device = resolve_device(get(params, "features.device"), "features.device")
    report = build_features(
        items,
        datasets[dataset],
        out / "vectors",
        text_model=get(params, "features.text_model"),
        batch_size=int(get(params, "features.batch_size")),
        device=device,
        dataset=dataset,
    )
    write_json(report, out / "features.json")
    log.info("wrote %s", out / "features.json")
    write_json(
        {"seconds": round(time.perf_counter() - started, 2), "device": device, "n_items": items.height},
        Path("logs") / dataset / "features" / "timing.json",
    )


if __name__ == "__main__":
    run_stage(main)
