"""Stage `neighbors`: each modality's item kNN lists of one dataset (FREEDOM's and LGMRec's item graphs).

    python -m stages.neighbors <dataset>

Reads data/<ds>/features/vectors/<modality>.npy, writes data/<ds>/neighbors/lists/knn_<modality>.parquet,
the committed fingerprint data/<ds>/neighbors/fingerprint.parquet (docs/reproducibility.md) and
data/<ds>/neighbors/neighbors.json (counts, recall against exact search, device). APFI's candidate
lists, which depend on xi, are the graph stage's. Timings go to logs/<ds>/neighbors/timing.json.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.device import resolve_device
from pipeline.errors import UserError
from pipeline.log import get_logger
from pipeline.neighbors.build import build_knn
from pipeline.params import get, load_params, write_json
from pipeline.paths import stage_dir
from pipeline.schemas import write_table
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
    device = resolve_device(get(params, "neighbors.device"), "neighbors.device")
    result = build_knn(
        vectors,
        k=int(get(params, "neighbors.k")),
        device=device,
        block_size=int(get(params, "neighbors.block_size")),
        recall_sample=int(get(params, "neighbors.recall_sample")),
        seed=int(get(params, "neighbors.seed")),
    )
    out = stage_dir(dataset, "neighbors")
    lists = out / "lists"
    for stale in lists.glob("*.parquet"):  # a modality dropped since the last run
        if stale.stem not in result.tables:
            stale.unlink()
    for stem, (kind, frame) in result.tables.items():
        write_table(frame, kind, lists / f"{stem}.parquet")
        log.info("wrote %s (%d rows)", lists / f"{stem}.parquet", frame.height)
    write_table(result.fingerprint, "fingerprint", out / "fingerprint.parquet")
    write_json(result.report, out / "neighbors.json")
    timing = {name: round(sec, 3) for name, sec in result.seconds.items()}
    write_json({"device": device, "n_items": result.report.get("n_items"), "seconds": timing},
               Path("logs") / dataset / "neighbors" / "timing.json")
    log.info("wrote %s and %s (what the reproducibility check compares); timings (s): %s",
             out / "fingerprint.parquet", out / "neighbors.json", timing)


if __name__ == "__main__":
    run_stage(main)
