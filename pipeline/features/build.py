"""The features stage's work: one float32 ``<modality>.npy`` per modality, plus a report.

Which modalities a dataset gets:

* ``image``: MMRec's ``image_feat.npy`` for MMRec imports, else the ``.b`` file named by
  ``datasets.<ds>.images``; absent when neither exists (the Amazon 2018 and MovieLens sets).
* ``text``: MMRec's ``text_feat.npy`` for MMRec imports, else the item sentences encoded with
  the text model; absent when no item has any text.

Later stages use whichever modalities the folder holds. A dataset with neither (ratings only)
gets an empty folder: the interaction-only models (``run.models_cf``) still train on it, the
neighbors stage writes only the item groups and the graph stage adds no pseudo edges.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import polars as pl

from pipeline.features import image as image_mod
from pipeline.features import text as text_mod
from pipeline.features.mmrec import copy_feature_file, is_mmrec, mmrec_feature_files
from pipeline.features.sentences import item_sentences
from pipeline.log import get_logger

log = get_logger(__name__)

MODALITIES = ("image", "text")


def _save(matrix: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.ascontiguousarray(matrix, dtype=np.float32))


def build_features(
    items: pl.DataFrame,
    dataset_cfg: Mapping[str, Any],
    out_dir: str | Path,
    *,
    text_model: str = text_mod.DEFAULT_MODEL,
    batch_size: int = 64,
    device: str = "cpu",
    dataset: str = "<ds>",
    load_encoder: Callable[..., Any] | None = None,
) -> dict[str, Any]:
    """Write ``out_dir/<modality>.npy`` for every modality the dataset has; return the report.

    ``items`` is the ingest ``items`` table (row i = item i). ``load_encoder(text_model, device)``
    defaults to :func:`pipeline.features.text.load_encoder`. Stale ``.npy`` files of modalities
    the dataset no longer has are removed, so the folder always holds exactly the modalities built.
    """
    out_dir = Path(out_dir)
    n_items = items.height
    report: dict[str, Any] = {"n_items": n_items, "modalities": []}
    done: dict[str, dict[str, Any]] = {}

    if is_mmrec(dataset_cfg):
        for modality, src in sorted(mmrec_feature_files(dataset_cfg, dataset).items()):
            done[modality] = copy_feature_file(src, out_dir / f"{modality}.npy", n_items)
            log.info("%s: copied MMRec features %s (%d x %d)", modality, src, n_items, done[modality]["dim"])

    if "image" not in done and dataset_cfg.get("images"):
        img = image_mod.image_features(dataset_cfg["images"], items["asin"].to_list(), dataset_cfg.get("image_dim"))
        _save(img.matrix, out_dir / "image.npy")
        done["image"] = {
            "source": str(dataset_cfg["images"]),
            "dim": int(img.matrix.shape[1]),
            "items_covered": img.n_matched,
            "items_fallback": img.n_fallback,
            "fallback": image_mod.FALLBACK_RULE,
            "records_read": img.n_records,
            "records_unknown_asin": img.n_unknown,
            "records_repeated": img.n_duplicate,
        }

    if "text" not in done:
        sentences = item_sentences(items)
        n_with_text = sum(1 for s in sentences if s)
        if n_with_text == 0:
            log.warning("text: no item has a title, brand, categories or description; no text modality")
        else:
            encoder = (load_encoder or text_mod.load_encoder)(text_model, device)
            txt = text_mod.text_features(sentences, encoder, batch_size)
            _save(txt.matrix, out_dir / "text.npy")
            done["text"] = {
                "source": "sentence-transformers",
                "model": str(text_model),
                "dim": int(txt.matrix.shape[1]),
                "items_covered": txt.n_encoded,
                "items_fallback": txt.n_fallback,
                "fallback": text_mod.FALLBACK_RULE,
                "sentence": "title + brand + first category path + description (HTML stripped)",
                "mean_sentence_chars": round(float(np.mean([len(s) for s in sentences])), 1),
            }

    if not done:
        log.warning(
            "dataset %s: no item features (no item text, no image file 'datasets.%s.images', no MMRec feature files): "
            "only the interaction-only models (run.models_cf) can train on it", dataset, dataset,
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    for modality in MODALITIES:
        stale = out_dir / f"{modality}.npy"
        if modality not in done and stale.exists():
            stale.unlink()
    report["modalities"] = sorted(done)
    report.update({m: done[m] for m in sorted(done)})
    log.info("wrote %s to %s", ", ".join(f"{m}.npy ({n_items} x {done[m]['dim']})" for m in sorted(done)) or "no feature file", out_dir)
    return report
