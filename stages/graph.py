"""Stage `graph`: the signed training graph of one dataset: PST thresholds and APFI's pseudo edges.

    python -m stages.graph <dataset>

Reads data/<ds>/ingest/interactions.parquet (train split only) and data/<ds>/features/vectors/*.npy.
The PST and APFI settings are params ``pst`` / ``apfi``, except the keys SiMGR's hyper-parameter
study selected on validation (tuning/<ds>/simgr/selected.json). Writes, in data/<ds>/graph/:
``candidates/{item_groups,tail_candidates,popular_candidates}.parquet`` (eq. 15-16),
``thresholds.parquet`` (PST, eq. 12-14), ``pseudo_edges.parquet`` (APFI, eq. 17-21), ``edges.parquet``
(the whole signed graph in one table), ``graph.json`` and the committed ``fingerprint.parquet``.
Models read only the parts they use: a PST change retrains only the models that read PST.
"""

from __future__ import annotations

from dataclasses import replace

import polars as pl

from pipeline.graph.build import candidate_settings, signed_graph
from pipeline.graph.signed import GraphSettings
from pipeline.log import get_logger
from pipeline.params import load_params, write_json
from pipeline.paths import stage_dir
from pipeline.schemas import read_table, write_table
from pipeline.tuning.selection import GRAPH_PREFIXES, SELECTED, apply, read_selected, study_dir
from stages._main import run_stage
from stages.neighbors import load_vectors

log = get_logger(__name__)


def main(dataset: str) -> None:
    params = load_params()
    selected_path = study_dir(dataset, "simgr") / SELECTED
    selected = {k: v for k, v in read_selected(selected_path).items() if k.startswith(GRAPH_PREFIXES)}
    if selected:
        log.info("signed-graph settings selected on validation (%s): %s", selected_path, selected)
    settings = GraphSettings.from_params(apply(params, selected, GRAPH_PREFIXES))
    inter_path = stage_dir(dataset, "ingest") / "interactions.parquet"
    interactions = read_table(inter_path, "interactions")
    log.info("read %s: %d interactions (%d train)", inter_path, interactions.height, int((interactions["split"] == "train").sum()))
    vectors = load_vectors(stage_dir(dataset, "features") / "vectors") if settings.apfi_enabled else {}
    if settings.apfi_enabled and not vectors:
        log.warning("%s: no item features: APFI adds no pseudo edges (graph.json settings: apfi_enabled false)", dataset)
        settings = replace(settings, apfi_enabled=False)
    graph, cands = signed_graph(interactions, vectors, settings, candidate_settings(params), source=str(inter_path))
    out = stage_dir(dataset, "graph")
    prints = []
    (out / "candidates").mkdir(parents=True, exist_ok=True)  # a DVC output, empty without APFI
    if cands is not None:
        for stem, (kind, frame) in cands.tables.items():
            write_table(frame, kind, out / "candidates" / f"{stem}.parquet")
            log.info("wrote %s (%d rows)", out / "candidates" / f"{stem}.parquet", frame.height)
        prints.append(cands.fingerprint)
    write_table(graph.thresholds, "thresholds", out / "thresholds.parquet")
    write_table(graph.pseudo, "pseudo_edges", out / "pseudo_edges.parquet")
    write_table(graph.edges, "edges", out / "edges.parquet")
    write_table(pl.concat(prints + [graph.fingerprint]), "fingerprint", out / "fingerprint.parquet")
    write_json({**graph.metrics, "candidates": cands.report if cands else {}, "selected_on_validation": selected}, out / "graph.json")
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
