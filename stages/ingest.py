"""Stage ``ingest@<ds>``: raw files -> data/<ds>/ingest/{interactions,users,items}.parquet + stats.json."""

from __future__ import annotations

from pipeline.ingest.dataset import IngestConfig, ingest
from pipeline.params import get, load_params
from pipeline.paths import stage_dir


def main(dataset: str) -> None:
    params = load_params()
    source = get(params, f"datasets.{dataset}")
    cfg = IngestConfig.from_params(get(params, "ingest"))
    ingest(source, cfg, stage_dir(dataset, "ingest"), name=dataset)


if __name__ == "__main__":
    from stages._main import run_stage

    run_stage(main)
