"""Stage `graph`: the signed training graph (PST thresholds, APFI pseudo edges) of one dataset.

Reads data/<ds>/ingest/interactions.parquet (train split only), and with APFI on
data/<ds>/neighbors/lists/{item_groups,tail_candidates,popular_candidates}.parquet plus, only for
users the lists cannot answer exactly, data/<ds>/features/vectors/*.npy. Writes
data/<ds>/graph/{edges.parquet, thresholds.parquet, graph.json} and the committed
data/<ds>/graph/fingerprint.parquet (docs/reproducibility.md). A dataset without item features
(an empty vectors folder) gets no pseudo edges, whatever apfi.enabled says (graph.json records it).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from pipeline.errors import UserError
from pipeline.graph.apfi import Similarity, fused_similarity
from pipeline.graph.signed import GraphSettings, build_signed_graph
from pipeline.log import get_logger
from pipeline.params import load_params, write_json
from pipeline.paths import stage_dir
from pipeline.schemas import read_table, write_table
from stages._main import run_stage

log = get_logger(__name__)


def _vector_paths(vec_dir: Path, n_items: int) -> list[Path]:
    paths = sorted(vec_dir.glob("*.npy"))
    if not paths:
        raise UserError(f"{vec_dir}: no <modality>.npy feature files (run the features stage)")
    for path in paths:
        shape = np.load(path, mmap_mode="r").shape
        if len(shape) != 2 or shape[0] != n_items:
            raise UserError(f"{path}: shape {shape}, expected ({n_items}, d): one row per item")
    return paths


def _nonzero_items(paths: list[Path], block: int = 8192) -> np.ndarray:
    """Items with a non-zero vector in every modality (read through a memory map, in row blocks)."""
    valid = None
    for path in paths:
        mat = np.load(path, mmap_mode="r")
        nonzero = np.concatenate([np.asarray(mat[i : i + block] != 0).any(axis=1) for i in range(0, len(mat), block)])
        valid = nonzero if valid is None else valid & nonzero
    return valid


def _similarity_factory(paths: list[Path]):
    def load() -> Similarity:
        log.info("read %s for the exact APFI fall-back", ", ".join(str(p) for p in paths))
        return fused_similarity([np.load(p) for p in paths])

    return load


def main(dataset: str) -> None:
    settings = GraphSettings.from_params(load_params())
    inter_path = stage_dir(dataset, "ingest") / "interactions.parquet"
    interactions = read_table(inter_path, "interactions")
    log.info("read %s: %d interactions (%d train)", inter_path, interactions.height, int((interactions["split"] == "train").sum()))

    kwargs = {}
    sources = {"interactions": str(inter_path)}
    vec_dir = stage_dir(dataset, "features") / "vectors"
    if settings.apfi_enabled and vec_dir.is_dir() and not any(vec_dir.glob("*.npy")):
        log.warning("%s: no item features (empty %s): APFI adds no pseudo edges (graph.json settings: apfi_enabled false)", dataset, vec_dir)
        settings = replace(settings, apfi_enabled=False)
    if settings.apfi_enabled:
        lists = stage_dir(dataset, "neighbors") / "lists"
        paths = {k: lists / f"{k}.parquet" for k in ("item_groups", "tail_candidates", "popular_candidates")}
        groups = read_table(paths["item_groups"], "item_groups")
        tail = read_table(paths["tail_candidates"], "candidates")
        popular = read_table(paths["popular_candidates"], "candidates")
        log.info("read %s: %d items (%d tail); %d tail and %d popular candidates", lists, groups.height, int(groups["tail"].sum()), tail.height, popular.height)
        vectors = _vector_paths(vec_dir, groups.height)
        valid = _nonzero_items(vectors)
        log.info("modalities %s: %d of %d items have a zero vector (no S^f)", [p.stem for p in vectors], int((~valid).sum()), len(valid))
        kwargs = dict(item_groups=groups, tail_lists=tail, popular_lists=popular, similarity=_similarity_factory(vectors), valid=valid)
        sources.update(item_groups=str(paths["item_groups"]), tail=str(paths["tail_candidates"]), popular=str(paths["popular_candidates"]))

    graph = build_signed_graph(interactions, settings, sources=sources, **kwargs)
    out = stage_dir(dataset, "graph")
    write_table(graph.edges, "edges", out / "edges.parquet")
    write_table(graph.thresholds, "thresholds", out / "thresholds.parquet")
    write_table(graph.fingerprint, "fingerprint", out / "fingerprint.parquet")
    write_json(graph.metrics, out / "graph.json")
    m = graph.metrics
    log.info(
        "wrote %s: %d edges (observed +%d / -%d, pseudo +%d / -%d); %d users, mean delta %s; "
        "%d / %d users without a positive / negative observed edge; exact fall-back for %d / %d users",
        out, m["edges"], m["observed_positive"], m["observed_negative"], m["pseudo_positive"], m["pseudo_negative"],
        m["users"], m["mean_delta"], m["users_no_positive"], m["users_no_negative"],
        m["fallback_users_positive"], m["fallback_users_negative"],
    )


if __name__ == "__main__":
    run_stage(main)
