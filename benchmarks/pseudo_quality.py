"""Pseudo-edge quality per modality, on validation, without training (issue 19, item 5).

Builds SiMGR's signed graph (PST eq. 12-14, APFI eq. 15-21) from each modality alone and from the
fused similarity (eq. 16) at the given graph settings, and measures how often a pseudo-positive
(pseudo-negative) edge is one of the user's validation items, against a random uninteracted item of
the same group (tail for pseudo-positive, popular for pseudo-negative) and of the whole catalogue
(:func:`pipeline.report.diagnosis.modality_quality`). Reads the dataset's ingest and feature outputs
(``data/<ds>/ingest``, ``data/<ds>/features/vectors``: run ``simgr ingest/features <ds>`` first); the
test split is not read. Writes ``--out`` (markdown) and the same numbers as JSON next to it.

    python benchmarks/pseudo_quality.py --dataset movielens --out benchmarks/results/pseudo-quality-movielens.md
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.data import load_vectors  # noqa: E402
from pipeline.graph.build import candidate_settings  # noqa: E402
from pipeline.graph.signed import GraphSettings  # noqa: E402
from pipeline.schemas import read_table  # noqa: E402
from pipeline.report.diagnosis import modality_quality  # noqa: E402
from pipeline.settings.load import load_params  # noqa: E402
from pipeline.settings.sections import APFI, PST  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--nu", type=float, default=0.5)
    ap.add_argument("--xi", type=float, default=0.1)
    ap.add_argument("--zeta-pos", type=float, default=0.4)
    ap.add_argument("--zeta-neg", type=float, default=0.1)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    data = ROOT / "data" / args.dataset
    interactions = read_table(data / "ingest" / "interactions.parquet", "interactions")
    vectors = load_vectors(data / "features" / "vectors")
    settings = GraphSettings(PST(nu=args.nu), APFI(xi=args.xi, zeta_pos=args.zeta_pos, zeta_neg=args.zeta_neg))
    quality = modality_quality(interactions, vectors, settings, candidate_settings(load_params().neighbors))
    head = (f"# Pseudo-edge quality per modality: {args.dataset} (validation)\n\n"
            f"Signed graph at nu {args.nu:g}, xi {args.xi:g}, zeta+ {args.zeta_pos:g}, zeta- {args.zeta_neg:g}, "
            f"Q {settings.apfi.q}; {interactions.height} interactions, modalities "
            + ", ".join(f"{m} ({v.shape[1]}-d)" for m, v in sorted(vectors.items())) + ". Hit rate: share of pseudo edges "
            "that are one of the user's validation items. Group baseline: a random item the user has not interacted "
            "with in training, of the same group (tail for pseudo-positive, popular for pseudo-negative); catalogue: "
            "of all items. A pseudo-positive ratio above 1 means APFI picks items the user takes; a pseudo-negative "
            "ratio below 1 means it avoids them.\n\n")
    rows = ["| similarity | pseudo edges | edges | users | hit rate | group baseline | ratio | catalogue baseline | ratio |",
            "|---|---|---|---|---|---|---|---|---|"]
    for name, q in quality.items():
        for kind, r in q.items():
            rows.append(f"| {name} | {kind.replace('_', '-')} | {r['edges']} | {r['users']} | {r['hit_rate']:.4f} | "
                        f"{r['group_rate']:.4f} ({r['group']}) | {r['ratio']:.2f} | {r['random_rate']:.4f} | {r['ratio_catalogue']:.2f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(head + "\n".join(rows) + "\n")
    settings_json = {"nu": args.nu, "xi": args.xi, "zeta_pos": args.zeta_pos, "zeta_neg": args.zeta_neg, "q": settings.apfi.q}
    args.out.with_suffix(".json").write_text(json.dumps({"dataset": args.dataset, "settings": settings_json,
                                                         "quality": quality}, indent=2, default=float) + "\n")
    print(args.out.read_text())


if __name__ == "__main__":
    main()
