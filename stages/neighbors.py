"""Stage `neighbors`: each modality's item kNN lists of one dataset (FREEDOM's and LGMRec's item graphs).

    python -m stages.neighbors <dataset>

Reads data/<ds>/features/vectors/<modality>.npy, writes data/<ds>/neighbors/lists/knn_<modality>.parquet,
the committed fingerprint data/<ds>/neighbors/fingerprint.parquet (docs/reproducibility.md) and
data/<ds>/neighbors/neighbors.json (counts, recall against exact search, device). APFI's candidate
lists, which depend on xi, are the graph stage's. Timings go to logs/<ds>/neighbors/timing.json.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.atomic import atomic_dir
from pipeline.data import load_vectors
from pipeline.device import resolve_device
from pipeline.jsonio import write_json
from pipeline.log import get_logger
from pipeline.neighbors.build import build_knn
from pipeline.paths import stage_dir
from pipeline.schemas import write_table
from pipeline.settings import load_params
from stages._main import run_stage

log = get_logger(__name__)


def main(dataset: str) -> None:
    params = load_params()
    params.dataset(dataset)
    vec_dir = stage_dir(dataset, "features") / "vectors"
    vectors = load_vectors(vec_dir)
    log.info("read %s: %s", vec_dir, {m: v.shape for m, v in vectors.items()} or "no feature files")
    nb = params.neighbors
    device = resolve_device(nb.device, "neighbors.device")
    result = build_knn(vectors, k=nb.k, device=device, block_size=nb.block_size, recall_sample=nb.recall_sample, seed=nb.seed)
    out = stage_dir(dataset, "neighbors")
    lists = out / "lists"
    with atomic_dir(lists) as staging:  # the whole folder replaced: no list of a modality dropped since the last run
        for stem, (kind, frame) in result.tables.items():
            write_table(frame, kind, staging / f"{stem}.parquet")
    for stem, (_, frame) in result.tables.items():
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
