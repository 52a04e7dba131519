"""The features stage's work: one float32 ``<modality>.npy`` per modality, plus a report.

Which modalities a dataset gets:

* ``image``: MMRec's ``image_feat.npy`` for MMRec imports, else ``datasets.<ds>.images``: the
  Amazon 2014 ``.b`` vectors matched by ASIN (:mod:`pipeline.features.image`, a name ending in
  ``.b``), or a folder of item images encoded with a pretrained CNN
  (:mod:`pipeline.features.image_files`: EfficientNet-Lite0, zero vector for an item without a
  usable image); absent when there is none (the Amazon 2018 set).
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
from pipeline.features import image_files
from pipeline.features import text as text_mod
from pipeline.features.mmrec import copy_feature_file, is_mmrec, mmrec_feature_files
from pipeline.features.sentences import item_sentences
from pipeline.ingest.image_files import DEFAULT_PATTERN, check_images_path, images_kind
from pipeline.log import get_logger

log = get_logger(__name__)

MODALITIES = ("image", "text")


def _save(matrix: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.ascontiguousarray(matrix, dtype=np.float32))


def _text_recipe(cfg: Mapping[str, Any]) -> tuple[str, list[tuple[str, str]]] | None:
    """For an item table with named text columns (``format: generic``): the sentence in words and
    the (ingest field, column) pairs whose emptiness features.json counts; None otherwise (the
    other formats' reports keep their bytes). Mirrors :func:`pipeline.ingest.generic.text_columns`."""
    if cfg.get("format") != "generic" or not cfg.get("items"):
        return None
    spec, flags = cfg.get("items_text") or {}, list(cfg.get("items_flags_as_categories") or [])
    if isinstance(spec, dict):
        fields, parts = {f: str(c) for f, c in spec.items()}, []
    else:
        fields, parts = {c: c for c in spec if c in ("title", "brand")}, [c for c in spec if c not in ("title", "brand")]
    pairs = [(f, fields[f]) for f in ("title", "brand") if f in fields]
    if flags:
        pairs.append(("categories", "categories"))
    if "description" in fields:
        pairs.append(("description", fields["description"]))
    elif parts:
        pairs.append(("description", " + ".join(parts)))
    words = " + ".join(f"categories ({len(flags)} flag columns)" if f == "categories" else c for f, c in pairs)
    return f"{words} (HTML stripped)", pairs


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
    load_image_encoder: Callable[..., Any] | None = None,
) -> dict[str, Any]:
    """Write ``out_dir/<modality>.npy`` for every modality the dataset has; return the report.

    ``items`` is the ingest ``items`` table (row i = item i). ``load_encoder(text_model, device)``
    defaults to :func:`pipeline.features.text.load_encoder`, ``load_image_encoder(device)`` (for
    a folder of images) to :func:`pipeline.features.image_files.load_image_encoder`; ``batch_size``
    is sentences or images per encoder batch. Stale ``.npy`` files of modalities the dataset no
    longer has are removed, so the folder always holds exactly the modalities built.
    """
    out_dir = Path(out_dir)
    n_items = items.height
    report: dict[str, Any] = {"n_items": n_items, "modalities": []}
    done: dict[str, dict[str, Any]] = {}

    if is_mmrec(dataset_cfg):
        for modality, src in sorted(mmrec_feature_files(dataset_cfg, dataset).items()):
            done[modality] = copy_feature_file(src, out_dir / f"{modality}.npy", n_items)
            log.info("%s: copied MMRec features %s (%d x %d)", modality, src, n_items, done[modality]["dim"])

    kind = images_kind(dataset_cfg)
    if "image" not in done and kind == "folder":
        folder = check_images_path(dataset_cfg, f"params.yaml: datasets.{dataset}.images", must_exist=True)
        pattern = dataset_cfg.get("images_pattern")
        encoder = (load_image_encoder or image_files.load_image_encoder)(device)
        found = image_files.image_folder_features(folder, items["asin"].to_list(), encoder, pattern=pattern, batch_size=batch_size)
        _save(found.matrix, out_dir / "image.npy")
        done["image"] = {
            "source": str(dataset_cfg["images"]),
            "pattern": pattern or DEFAULT_PATTERN,
            "dim": int(found.matrix.shape[1]),
            **found.report(),
            "fallback": image_files.FALLBACK_RULE,
            "encoder": encoder.info,
            "preprocessing": image_files.PREPROCESSING,
        }
    elif "image" not in done and kind == "vectors":
        check_images_path(dataset_cfg, f"params.yaml: datasets.{dataset}.images")
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
            recipe = _text_recipe(dataset_cfg)
            if recipe is not None:  # named columns: say which, and how many items lack each part
                done["text"]["sentence"] = recipe[0]
                done["text"]["items_without"] = {
                    column: int(items[f].is_null().sum()) if f in items.columns else items.height for f, column in recipe[1]
                }
                log.info("text: items without %s", ", ".join(f"{c} {n}" for c, n in done["text"]["items_without"].items()))

    if not done:
        log.warning(
            "dataset %s: no item features (no item text, no images 'datasets.%s.images', no MMRec feature files): "
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
