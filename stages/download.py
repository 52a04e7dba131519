"""Stage ``download@<ds>``: raw files in place (shipped / synthetic / downloaded) + manifest.json."""

from __future__ import annotations

from pipeline.ingest.download import acquire
from pipeline.settings import load_params


def main(dataset: str) -> None:
    params = load_params()
    entry = params.dataset(dataset)
    acquire(dataset, entry.model_dump(exclude_none=True), params.synth.model_dump() if entry.source == "synthetic" else None)


if __name__ == "__main__":
    from stages._main import run_stage

    run_stage(main)
