"""Stage ``ingest@<ds>``: raw files -> data/<ds>/ingest/{interactions,users,items}.parquet + stats.json."""

from __future__ import annotations

from pipeline.ingest.dataset import ingest
from pipeline.paths import stage_dir
from pipeline.settings import load_params


def main(dataset: str) -> None:
    params = load_params()
    ingest(params.dataset(dataset).model_dump(exclude_none=True), params.ingest, stage_dir(dataset, "ingest"), name=dataset)


if __name__ == "__main__":
    from stages._main import run_stage

    run_stage(main)
