"""The signed graph of a dataset from its interactions and item features: APFI's candidate lists
(eq. 15-16) and then PST and APFI (eq. 12-21), as SiMGR's study builds it (:func:`signed_graph`) and
as the graph stage builds and writes it (:func:`build_graph_outputs`)."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import polars as pl

from pipeline.atomic import atomic_dir
from pipeline.device import resolve_device
from pipeline.graph.apfi import fused_similarity
from pipeline.graph.signed import GraphSettings, SignedGraph, build_signed_graph
from pipeline.jsonio import write_json
from pipeline.log import get_logger
from pipeline.neighbors.build import NeighborsResult, build_candidates
from pipeline.neighbors.similarity import nonzero_rows
from pipeline.paths import stage_dir
from pipeline.schemas import read_table, write_table
from pipeline.settings.sections import Neighbors

log = get_logger(__name__)


def candidate_settings(neighbors: Neighbors) -> dict[str, Any]:
    """The ``neighbors`` params that shape APFI's candidate search (build_candidates' keywords)."""
    return dict(n_candidates=neighbors.candidates, device=resolve_device(neighbors.device, "neighbors.device"),
                block_size=neighbors.block_size, recall_sample=neighbors.recall_sample, seed=neighbors.seed)


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
    if settings.apfi.enabled:
        train_items = interactions.filter(pl.col("split") == "train")["item"].to_numpy()
        cands = build_candidates(vectors, train_items, xi=settings.apfi.xi, **candidates)
        kwargs = dict(
            item_groups=cands.tables["item_groups"][1],
            tail_lists=cands.tables["tail_candidates"][1],
            popular_lists=cands.tables["popular_candidates"][1],
            similarity=lambda: fused_similarity([vectors[m] for m in sorted(vectors)]),
            valid=nonzero_rows(dict(vectors)),
        )
    return build_signed_graph(interactions, settings, sources={"interactions": source}, **kwargs), cands


def build_graph_outputs(dataset: str, settings: GraphSettings, sources: Mapping[str, str], vectors: Mapping[str, np.ndarray],
                        neighbors: Neighbors) -> SignedGraph:
    """The graph stage's work: build the signed graph of ``dataset`` and write ``data/<dataset>/graph/``."""
    inter_path = stage_dir(dataset, "ingest") / "interactions.parquet"
    interactions = read_table(inter_path, "interactions")
    log.info("read %s: %d interactions (%d train)", inter_path, interactions.height, int((interactions["split"] == "train").sum()))
    if settings.apfi.enabled and not vectors:
        log.warning("%s: no item features: APFI adds no pseudo edges (graph.json: apfi.enabled false)", dataset)
        settings = GraphSettings(settings.pst, settings.apfi.model_copy(update={"enabled": False}))
    graph, cands = signed_graph(interactions, vectors, settings, candidate_settings(neighbors), source=str(inter_path))
    out = stage_dir(dataset, "graph")
    prints = []
    with atomic_dir(out / "candidates") as staging:  # a DVC output (empty without APFI), replaced as a whole
        for stem, (kind, frame) in (cands.tables if cands is not None else {}).items():
            write_table(frame, kind, staging / f"{stem}.parquet")
            log.info("wrote %s (%d rows)", out / "candidates" / f"{stem}.parquet", frame.height)
    if cands is not None:
        prints.append(cands.fingerprint)
    write_table(graph.thresholds, "thresholds", out / "thresholds.parquet")
    write_table(graph.pseudo, "pseudo_edges", out / "pseudo_edges.parquet")
    write_table(graph.edges, "edges", out / "edges.parquet")
    write_table(pl.concat(prints + [graph.fingerprint]), "fingerprint", out / "fingerprint.parquet")
    write_json({**graph.metrics, "candidates": cands.report if cands else {}, "sources": dict(sources)}, out / "graph.json")
    m = graph.metrics
    log.info(
        "wrote %s: %d edges (observed +%d / -%d, pseudo +%d / -%d); %d users, mean delta %s; "
        "%d / %d users without a positive / negative observed edge; exact fall-back for %d / %d users",
        out, m["edges"], m["observed_positive"], m["observed_negative"], m["pseudo_positive"], m["pseudo_negative"],
        m["users"], m["mean_delta"], m["users_no_positive"], m["users_no_negative"],
        m["fallback_users_positive"], m["fallback_users_negative"],
    )
    return graph
