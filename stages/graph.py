"""Stage `graph`: the signed training graph of one dataset: PST thresholds and APFI's pseudo edges.

    python -m stages.graph <dataset>

Reads data/<ds>/ingest/interactions.parquet (train split only) and data/<ds>/features/vectors/*.npy.
The PST and APFI settings are params ``pst`` / ``apfi`` as written, a key set to ``auto`` taking
the value SiMGR's study selected on validation (tuning/<ds>/simgr/selected.json). Writes, in
data/<ds>/graph/: ``candidates/{item_groups,tail_candidates,popular_candidates}.parquet``
(eq. 15-16), ``thresholds.parquet`` (PST, eq. 12-14), ``pseudo_edges.parquet`` (APFI, eq. 17-21),
``edges.parquet`` (the whole signed graph in one table), ``graph.json`` (counts, the settings used
and where each came from) and the committed ``fingerprint.parquet``. Models read only the parts
they use: a PST change retrains only the models that read PST. A graph without a positive (or a
negative) edge is a warning saying what that means for SGA and which setting changes it.
"""

from __future__ import annotations

from pipeline.data import load_vectors
from pipeline.errors import UserError
from pipeline.graph.build import build_graph_outputs
from pipeline.graph.signed import GraphSettings
from pipeline.log import get_logger
from pipeline.paths import stage_dir
from pipeline.run.models import resolve_graph
from pipeline.run.selection import SELECTED, read_selected, study_dir
from pipeline.settings import load_params
from pipeline.settings.sections import APFI, PST
from pipeline.settings.types import is_auto
from stages._main import run_stage

log = get_logger(__name__)


def main(dataset: str) -> None:
    params = load_params()
    params.dataset(dataset)
    selection = {}
    path = study_dir(dataset, "simgr") / SELECTED
    autos = [f"{name}.{key}" for name, section in (("pst", params.pst or PST()), ("apfi", params.apfi or APFI()))
             for key, value in section if is_auto(value)]
    if params.tune.enabled and autos:
        if not path.exists():
            raise UserError(f"{path}: not found: the signed graph takes {', '.join(autos)} (auto) from SiMGR's study on {dataset}, "
                            f"which has not run; run it (simgr tune {dataset} simgr, or dvc repro), or build the graph without it: give "
                            "those keys values, or set tune.enabled: false (every auto at its default; dvc exp run -S tune.enabled=false)")
        selection = read_selected(path)
    settings, sources = resolve_graph(params, selection=selection)
    log.info("signed-graph settings: %s", {k: f"{v} ({sources[k]})" for k, v in settings.describe().items()})
    vectors = load_vectors(stage_dir(dataset, "features") / "vectors") if settings.apfi.enabled else {}
    graph = build_graph_outputs(dataset, settings, sources, vectors, params.neighbors)
    for line in one_sided(dataset, graph.metrics, settings):
        log.warning("%s", line)


def one_sided(dataset: str, metrics: dict, settings: GraphSettings) -> list[str]:
    """What it means when the signed graph has no positive (or no negative) edge, and how to change it."""
    counts = {"positive": metrics["observed_positive"] + metrics["pseudo_positive"],
              "negative": metrics["observed_negative"] + metrics["pseudo_negative"]}
    if settings.pst.enabled:
        rule = f"pst.nu = {settings.pst.nu:g}: a rating is positive above nu * its user's mean - (1 - nu) * their spread"
        fix = {"positive": "lower pst.nu (e.g. 0.5)", "negative": "raise pst.nu (e.g. 0.5)"}
    else:
        rule = f"pst.enabled false, pst.delta = {settings.pst.delta:g}: a rating is positive above delta"
        fix = {"positive": "lower pst.delta", "negative": "raise pst.delta"}
    lines = []
    for sign, other in (("positive", "negative"), ("negative", "positive")):
        if counts[sign] == 0 and counts[other] > 0:
            lines.append(f"{dataset}: the signed graph has no {sign} edge (all {counts[other]} edges are {other}; {rule}): SGA's "
                         f"{sign} branch has no edges, so SiMGR and the variants reading the graph learn from the {other} branch "
                         f"alone; to change it, {fix[sign]}")
    return lines


if __name__ == "__main__":
    run_stage(main)
