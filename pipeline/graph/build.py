"""The signed graph of a dataset from its interactions and item features: APFI's candidate lists
(eq. 15-16) and then PST and APFI (eq. 12-21), as the graph stage and SiMGR's study build it."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import polars as pl

from pipeline.device import resolve_device
from pipeline.graph.apfi import fused_similarity
from pipeline.graph.signed import GraphSettings, SignedGraph, build_signed_graph
from pipeline.neighbors.build import NeighborsResult, build_candidates
from pipeline.neighbors.similarity import nonzero_rows
from pipeline.params import get


def candidate_settings(params: dict[str, Any]) -> dict[str, Any]:
    """The ``neighbors`` params that shape APFI's candidate search (build_candidates' keywords)."""
    return dict(
        n_candidates=int(get(params, "neighbors.candidates")),
        device=resolve_device(get(params, "neighbors.device"), "neighbors.device"),
        block_size=int(get(params, "neighbors.block_size")),
        recall_sample=int(get(params, "neighbors.recall_sample")),
        seed=int(get(params, "neighbors.seed")),
    )


def signed_graph(
    interactions: pl.DataFrame,
    vectors: Mapping[str, np.ndarray],
    settings: GraphSettings,
    candidates: Mapping[str, Any],
    source: str = "interactions",
) -> tuple[SignedGraph, NeighborsResult | None]:
    """(the signed graph, APFI's candidate lists or None without APFI). ``candidates``: keyword
    arguments of :func:`pipeline.neighbors.build.build_candidates` (n_candidates, device, ...)."""
    kwargs: dict[str, Any] = {}
    cands = None
    if settings.apfi_enabled:
        train_items = interactions.filter(pl.col("split") == "train")["item"].to_numpy()
        cands = build_candidates(vectors, train_items, xi=settings.xi, **candidates)
        kwargs = dict(
            item_groups=cands.tables["item_groups"][1],
            tail_lists=cands.tables["tail_candidates"][1],
            popular_lists=cands.tables["popular_candidates"][1],
            similarity=lambda: fused_similarity([vectors[m] for m in sorted(vectors)]),
            valid=nonzero_rows(dict(vectors)),
        )
    return build_signed_graph(interactions, settings, sources={"interactions": source}, **kwargs), cands
