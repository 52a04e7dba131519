"""The reproducibility contract: how each kind of pipeline output must compare across machines.

``docs/reproducibility.md`` is the prose of this module; change them together. Every output
path in ``dvc.lock`` matches exactly one :data:`RULES` entry (tests check it on the committed
lock). The kinds:

``exact``      computed in integers or decided without float ties: the same bytes on any machine
               (the md5 in ``dvc.lock``, or the committed file's bytes / JSON values).
``sketch``     feature vectors, compared through their committed sketch
               (:mod:`pipeline.repro.fingerprint`): every coordinate within :data:`FEATURE_TOL`.
``ties``       neighbour lists and pseudo edges, compared through their committed fingerprint:
               identical except where the margin that decides them is within :data:`SCORE_TOL`
               (a float tie), scores within :data:`SCORE_TOL` per entry; exact parts exactly.
``band``       trained-model metrics: each run within :data:`BAND_FACTOR` times the seed
               standard deviation of that metric (the measured spread over seeds: the dataset's
               pooled one, or the model's own where that is larger), and each
               model's mean difference over its rebuilt seeds within :data:`MEAN_FACTOR` times
               the standard deviation of such a mean.
``derived``    files that follow from compared ones and hold float trajectories (model weights,
               rankings, reports): not compared byte for byte across machines; they are covered
               by the metrics computed from them.
``represented`` a large output compared through another file (its fingerprint).
``trusted``    hyper-parameter studies: never rebuilt by the check (hours of trials); their
               committed tables are taken as they are, and the staleness check still requires their
               code, params and (machine-independent) inputs to be those dvc.lock records.

Tolerances were set from measurements (docs/reproducibility.md): with torch and MKL forced onto
their generic code paths, feature-sketch coordinates moved by at most 2.7e-6 and similarity
scores by at most 2.6e-7; the tolerances below leave a factor of about 20.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

#: max |change| of a feature-sketch coordinate (about the L2 distance an item vector may move)
FEATURE_TOL = 5e-5
#: max |change| of a similarity score or pseudo-edge weight; a decision margin below it is a tie
SCORE_TOL = 5e-6
#: metrics compared with a band, per split
BAND_METRICS = ("recall@20", "ndcg@20")
BAND_SPLITS = ("valid", "test")
#: per run: band = BAND_FACTOR x sigma, the larger of the dataset's pooled seed standard deviation
#: of the metric and the model's own. A rebuild on another CPU that diverges is like a draw with a
#: new seed: its difference to the committed run then has sd sqrt(2) sigma, so 6 sigma = 4.2 of
#: those sd (docs/reproducibility.md: with forced code paths the largest move was 4.35 sigma)
BAND_FACTOR = 6.0
#: per model, over its rebuilt seeds (at least MEAN_MIN_SEEDS): |mean difference| <= MEAN_FACTOR x
#: sigma x sqrt(2 / n) -- 4 sd of the mean of n such differences; catches a shift that every run
#: of a model makes within its own band (a real change of the model)
MEAN_FACTOR = 4.0
MEAN_MIN_SEEDS = 3
#: the band where a dataset has no seed spread to measure (one seed per model)
BAND_FLOOR = 0.01
#: fields of the metrics JSON that must be equal (integers and settings)
METRICS_EXACT = ("protocol", "n_test_users", "n_valid_users", "n_dropped_no_train", "max_validations")

#: JSON fields whose values are decided by float ties (compared through the fingerprints instead)
TIE_FIELDS = {
    "neighbors.json": ("knn.*.recall_vs_exact", "tail_candidates.recall_vs_exact", "popular_candidates.recall_vs_exact"),
    "graph.json": (
        "pseudo_positive", "pseudo_negative", "edges", "users_no_positive_with_pseudo",
        "users_no_negative_with_pseudo", "fallback_users_positive", "fallback_users_negative",
        "items_unseen_with_pseudo_edge",
    ),
}


@dataclass(frozen=True)
class Rule:
    pattern: str  # fnmatch pattern of an output path (relative to the repository root)
    kind: str  # exact | sketch | ties | band | derived | represented
    how: str  # what is compared, in words (the check's table)
    via: str | None = None  # for "represented": the pattern's fingerprint file ("{ds}" = dataset)


RULES: tuple[Rule, ...] = (
    Rule("data/params.valid", "exact", "md5 in dvc.lock"),
    Rule("data/raw/*/manifest.json", "exact", "committed bytes"),
    Rule("data/raw/*/*", "exact", "md5 in dvc.lock"),
    Rule("data/*/ingest/*.parquet", "exact", "md5 in dvc.lock"),
    Rule("data/*/ingest/stats.json", "exact", "committed JSON values"),
    Rule("data/*/features/vectors", "represented", "through its sketch", "data/{ds}/features/fingerprint.parquet"),
    Rule("data/*/features/fingerprint.parquet", "sketch", f"sketch within {FEATURE_TOL:g}"),
    Rule("data/*/features/features.json", "exact", "committed JSON values"),
    Rule("data/*/neighbors/lists", "represented", "through its fingerprint", "data/{ds}/neighbors/fingerprint.parquet"),
    Rule("data/*/neighbors/fingerprint.parquet", "ties", f"equal up to ties (margin <= {SCORE_TOL:g})"),
    Rule("data/*/neighbors/neighbors.json", "exact", "committed JSON values but recall at ties"),
    Rule("data/*/graph/thresholds.parquet", "exact", "md5 in dvc.lock"),
    Rule("data/*/graph/candidates", "represented", "through its fingerprint", "data/{ds}/graph/fingerprint.parquet"),
    Rule("data/*/graph/pseudo_edges.parquet", "represented", "through its fingerprint", "data/{ds}/graph/fingerprint.parquet"),
    Rule("data/*/graph/edges.parquet", "represented", "through its fingerprint", "data/{ds}/graph/fingerprint.parquet"),
    Rule("data/*/graph/fingerprint.parquet", "ties", f"observed exact, pseudo equal up to ties (margin <= {SCORE_TOL:g})"),
    Rule("data/*/graph/graph.json", "exact", "committed JSON values but pseudo-edge counts"),
    Rule("tuning/inputs", "exact", "md5 in dvc.lock"),  # what each study reads of params.yaml (the check stage)
    Rule("tuning/code", "exact", "md5 in dvc.lock"),  # the files of pipeline/models each model runs (the check stage)
    Rule("tuning/*", "trusted", "taken from the commit: studies are not rebuilt (hours of trials)"),
    Rule("models/*", "derived", "weights: covered by the metrics band"),
    Rule("eval/*", "derived", "rankings: covered by the metrics band"),
    Rule("metrics/*", "band", f"{', '.join(BAND_METRICS)} within {BAND_FACTOR:g} x seed std"),
    Rule("reports/plots/*", "derived", "plot data built from the metrics and training curves"),
    Rule("reports/summary/*", "derived", "summary of the metrics (mean, std over seeds)"),
    Rule("reports/*", "derived", "built from the metrics"),
)


def rule_for(path: str) -> Rule:
    """The first rule whose pattern matches ``path`` (a KeyError names a path no rule covers)."""
    for rule in RULES:
        if fnmatch.fnmatchcase(path, rule.pattern):
            return rule
    raise KeyError(f"no reproducibility rule covers the output {path!r} (add one to pipeline/repro/contract.py)")


def dataset_of(path: str) -> str:
    """The dataset a ``data/<ds>/...``, ``metrics/<ds>/...`` (etc.) output belongs to."""
    parts = path.split("/")
    if parts[:2] == ["data", "raw"] or parts[:2] in (["reports", "plots"], ["reports", "summary"]):
        return parts[2].split(".")[0]
    return parts[1]
