"""Stage `neighbors`: item kNN lists per modality and APFI candidate lists of one dataset.

    python -m stages.neighbors <dataset>

Reads data/<ds>/features/vectors/<modality>.npy and data/<ds>/ingest/interactions.parquet
(training rows only), writes data/<ds>/neighbors/lists/{knn_<modality>, tail_candidates,
popular_candidates, item_groups}.parquet and data/<ds>/neighbors/neighbors.json (counts, recall
against exact search, device). Timings go to logs/<ds>/neighbors/timing.json (not a DVC output).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from pipeline.errors import UserError
from pipeline.features.device import resolve_device
from pipeline.log import get_logger
from pipeline.neighbors.build import build_neighbors, without_features
from pipeline.params import get, load_params, write_json
from pipeline.paths import stage_dir
from pipeline.schemas import read_table, write_table
from stages._main import run_stage

log = get_logger(__name__)


def load_vectors(vec_dir: Path) -> dict[str, np.ndarray]:
    """modality -> float32 matrix, from every ``<modality>.npy`` in ``vec_dir`` (none: a dataset
    without item features, whose features stage left the folder empty)."""
    if not vec_dir.is_dir():
        raise UserError(f"{vec_dir}: folder not found (run the features stage first)")
    paths = sorted(vec_dir.glob("*.npy"))
    out = {}
    for path in paths:
        try:
            out[path.stem] = np.load(path, allow_pickle=False).astype(np.float32, copy=False)
        except Exception as exc:
            raise UserError(f"{path}: not a readable .npy matrix ({exc.__class__.__name__}: {exc})") from None
        log.info("read %s (%d x %d)", path, *out[path.stem].shape)
    return out


def main(dataset: str) -> None:
    params = load_params()
    vectors = load_vectors(stage_dir(dataset, "features") / "vectors")
    inter_path = stage_dir(dataset, "ingest") / "interactions.parquet"
    inter = read_table(inter_path, "interactions", columns=["item", "split"])
    train = inter.filter(pl.col("split") == "train")
    log.info("read %d training interactions from %s", train.height, inter_path)
    device = resolve_device(get(params, "neighbors.device"), "neighbors.device")
    if not vectors:  # ids are contiguous, so every item appears in the interactions
        result = without_features(train["item"].to_numpy(), int(inter["item"].max()) + 1, k=int(get(params, "neighbors.k")),
                                  n_candidates=int(get(params, "neighbors.candidates")), xi=float(get(params, "apfi.xi")))
    else:
        result = build_neighbors(
            vectors,
            train["item"].to_numpy(),
            k=int(get(params, "neighbors.k")),
            n_candidates=int(get(params, "neighbors.candidates")),
            xi=float(get(params, "apfi.xi")),
            device=device,
            block_size=int(get(params, "neighbors.block_size")),
            recall_sample=int(get(params, "neighbors.recall_sample")),
            seed=int(get(params, "neighbors.seed")),
        )
    out = stage_dir(dataset, "neighbors")
    lists = out / "lists"
    for stale in lists.glob("knn_*.parquet"):  # a modality dropped since the last run
        if stale.stem not in result.tables:
            stale.unlink()
    for stem, (kind, frame) in result.tables.items():
        write_table(frame, kind, lists / f"{stem}.parquet")
        log.info("wrote %s (%d rows)", lists / f"{stem}.parquet", frame.height)
    write_table(result.fingerprint, "fingerprint", out / "fingerprint.parquet")
    log.info("wrote %s (%d rows: what the reproducibility check compares across machines)", out / "fingerprint.parquet", result.fingerprint.height)
    write_json(result.report, out / "neighbors.json")
    timing = {name: round(sec, 3) for name, sec in result.seconds.items()}
    write_json({"device": device, "n_items": result.report["n_items"], "seconds": timing},
               Path("logs") / dataset / "neighbors" / "timing.json")
    log.info("timings (s): %s", timing)


if __name__ == "__main__":
    run_stage(main)
