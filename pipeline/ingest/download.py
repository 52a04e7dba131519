"""Getting a dataset's raw files in place, and recording them in ``data/raw/<ds>/manifest.json``.

``source`` in a ``datasets.<name>`` entry says how:

- ``shipped``: the files are in the repository; check they exist.
- ``synthetic``: the files are generated here (:func:`pipeline.synth.write_synthetic` with params
  ``synth``, seeded, the same bytes every time), after checking the configuration against the
  generator (same folder and file names, same image dimension); so they are generated only when
  the synthetic dataset is in ``run.datasets``.
- ``download``: use files already placed; fetch the missing ones from their official URL (the
  paper's Amazon 2014 sets: :data:`AMAZON2014`); without network, fail with one line saying which
  files to place where.

The manifest lists each configured file (path, size in bytes, sha256) in a fixed order, so the
same files always give the same manifest bytes.
"""

from __future__ import annotations

import hashlib
import shutil
import urllib.request
from pathlib import Path
from typing import Any, Callable

from pipeline.errors import UserError
from pipeline.log import get_logger, progress
from pipeline.params import write_json
from pipeline.paths import raw_dir

log = get_logger(__name__)

FILE_KEYS = ("reviews", "meta", "images", "items")
SOURCES = ("shipped", "synthetic", "download")

# the paper's datasets: Amazon 2014 category names (McAuley et al., SIGIR 2015)
AMAZON2014 = {"baby": "Baby", "sports": "Sports_and_Outdoors", "electronics": "Electronics"}
AMAZON2014_BASE = "http://snap.stanford.edu/data/amazon/productGraph"

Fetch = Callable[[str, Path], None]


def official_files(dataset: str) -> dict[str, tuple[str, str]]:
    """``{key: (file name, URL)}`` of a paper dataset (baby / sports / electronics), else ``{}``."""
    cat = AMAZON2014.get(dataset)
    if cat is None:
        return {}
    return {
        "reviews": (f"reviews_{cat}_5.json.gz", f"{AMAZON2014_BASE}/categoryFiles/reviews_{cat}_5.json.gz"),
        "meta": (f"meta_{cat}.json.gz", f"{AMAZON2014_BASE}/categoryFiles/meta_{cat}.json.gz"),
        "images": (f"image_features_{cat}.b", f"{AMAZON2014_BASE}/image_features/categoryFiles/image_features_{cat}.b"),
    }


def configured_files(cfg: dict[str, Any]) -> dict[str, Path]:
    """The raw files a dataset entry names, in :data:`FILE_KEYS` order."""
    return {key: Path(cfg[key]) for key in FILE_KEYS if cfg.get(key)}


def sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh, progress(total=path.stat().st_size, desc=f"sha256 {path.name}", unit="B", unit_scale=True) as bar:
        while block := fh.read(chunk):
            digest.update(block)
            bar.update(len(block))
    return digest.hexdigest()


def urllib_fetch(url: str, dest: Path, timeout: float = 30.0) -> None:
    """Download ``url`` to ``dest`` (through a temporary file, so a failed download leaves nothing)."""
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, part.open("wb") as out:
            shutil.copyfileobj(response, out, 1 << 20)
        part.replace(dest)
    finally:
        part.unlink(missing_ok=True)


def _download(dataset: str, cfg: dict[str, Any], fetch: Fetch) -> None:
    urls = {key: url for key, (_, url) in official_files(dataset).items()}
    missing = {key: path for key, path in configured_files(cfg).items() if not path.is_file()}
    failed: list[str] = []
    for key, path in missing.items():
        if key not in urls:
            failed.append(str(path))
            continue
        log.info("downloading %s -> %s", urls[key], path)
        try:
            fetch(urls[key], path)
        except OSError as exc:  # URLError, timeouts, refused connections are all OSError
            log.warning("download of %s failed: %s", urls[key], exc)
            failed.append(f"{path} (from {urls[key]})")
    if failed:
        raise UserError(f"{dataset}: raw files missing and not downloadable (offline?); place them here: {'; '.join(failed)}")


def _check_synthetic(dataset: str, cfg: dict[str, Any], synth: dict[str, Any]) -> None:
    """The ``datasets.<ds>`` entry must name the files the generator writes."""
    from pipeline.synth import synthetic_files  # lazily: only the synthetic dataset needs it

    if "image_dim" in cfg and int(cfg["image_dim"]) != int(synth.get("image_dim", 4096)):
        raise UserError(f"params.yaml: datasets.{dataset}.image_dim ({cfg['image_dim']}) must equal synth.image_dim ({synth.get('image_dim')})")
    files = configured_files(cfg)
    out_dirs = {path.parent for path in files.values()}
    if len(out_dirs) != 1:
        raise UserError(f"params.yaml: datasets.{dataset}: synthetic files must share one folder, got {sorted(map(str, out_dirs))}")
    expected = synthetic_files(out_dirs.pop())
    for key, path in files.items():
        if key in expected and Path(expected[key]) != path:
            raise UserError(f"params.yaml: datasets.{dataset}.{key} is {path}, but the generator writes {expected[key]}")


def acquire(dataset: str, cfg: dict[str, Any], synth: dict[str, Any] | None = None, fetch: Fetch = urllib_fetch,
            manifest_dir: Path | None = None) -> dict[str, Any]:
    """Put the raw files of ``dataset`` in place and write its manifest; returns the manifest."""
    source = cfg.get("source", "shipped")
    if source not in SOURCES:
        raise UserError(f"params.yaml: datasets.{dataset}.source must be one of {list(SOURCES)}, got {source!r}")
    files = configured_files(cfg)
    if "reviews" not in files:
        raise UserError(f"params.yaml: datasets.{dataset} names no 'reviews' file")
    if source == "synthetic":
        _check_synthetic(dataset, cfg, synth or {})
        from pipeline.synth import write_synthetic

        written = write_synthetic(next(iter(files.values())).parent, **(synth or {}))
        log.info("%s: generated %s (params synth)", dataset, ", ".join(str(p) for p in written.values()))
    elif source == "download":
        _download(dataset, cfg, fetch)
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise UserError(f"{dataset}: raw file(s) not found: {', '.join(missing)}")
    manifest = {
        "dataset": dataset,
        "source": source,
        **({"generated_by": "pipeline.synth.write_synthetic, params synth"} if source == "synthetic" else {}),
        "files": {key: {"path": path.as_posix(), "bytes": path.stat().st_size, "sha256": sha256(path)} for key, path in files.items()},
    }
    target = (manifest_dir or raw_dir(dataset)) / "manifest.json"
    write_json(manifest, target)
    log.info("%s: %d raw file(s) in place (%s); wrote %s", dataset, len(files), source, target)
    return manifest
