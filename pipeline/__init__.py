"""SiMGR: sign-aware multimodal graph recommendation, as a staged and reproducible pipeline.

Layers (imports point one way, top to bottom):

    stages/, pipeline.cli      thin entry points: read params, call the library, write outputs
    pipeline.training          the trainer (the only stateful place) and its data loading
    pipeline.models            recommenders behind one interface (pipeline.models.base)
    pipeline.graph             signed graph construction (PST, APFI) and adjacency helpers
    pipeline.neighbors         FAISS item kNN and APFI candidate lists
    pipeline.features          text and image item features
    pipeline.ingest            raw readers, cleaning, k-core, re-indexing, splits
    pipeline.evaluation        full-ranking metrics (imports no model)
    pipeline.schemas, errors   data contracts and user-facing errors
"""

__version__ = "0.1.0"
