"""SiMGR: sign-aware multimodal graph recommendation, as a staged and reproducible pipeline.

Layers (imports point one way, top to bottom; pyproject.toml's [tool.importlinter] declares them and
tests/test_layers.py checks them):

    stages/ (and the `simgr` CLI, stages/cli.py)   thin entry points: read params, call the library, write outputs
    pipeline.check, pipeline.repro (but fingerprint)  params checks that need the models; the reproducibility check
    pipeline.tuning | report | export                 studies on validation; reports; serving and MMRec exports
    pipeline.run                                      the one place a run is set up (settings -> inputs -> model -> trainer)
    pipeline.training                                 the trainer (the only stateful place)
    pipeline.models                                   recommenders behind one interface, each declaring its schema
    pipeline.graph | evaluation                       signed graph (PST, APFI), adjacency; full-ranking metrics (no model)
    pipeline.neighbors | features                     item kNN and APFI candidates; text and image item features
    pipeline.ingest                                   raw readers, cleaning, k-core, re-indexing, splits, download, synth
    pipeline.data | settings | repro.fingerprint      data classes; the params schema (typed settings); committed sketches
    & skipped                                         (a run that cannot run on its dataset)
    pipeline.schemas | jsonio | paths | device | log  parquet contracts, JSON files, where files go, devices, logging
    pipeline.errors                                   UserError: one line, exit status 2
"""

__version__ = "0.1.0"
