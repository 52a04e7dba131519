"""Stage ``download@<ds>``: raw files in place (shipped / synthetic / downloaded) + manifest.json."""

from __future__ import annotations

from pipeline.ingest.download import acquire
from pipeline.params import get, load_params


def main(dataset: str) -> None:
    params = load_params()
    cfg = get(params, f"datasets.{dataset}")
    synth = get(params, "synth") if cfg.get("source") == "synthetic" else None
    acquire(dataset, cfg, synth)


if __name__ == "__main__":
    from stages._main import run_stage

    run_stage(main)
