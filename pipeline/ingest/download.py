"""Getting a dataset's raw files in place, and recording them in ``data/raw/<ds>/manifest.json``.

``source`` in a ``datasets.<name>`` entry says how:

- ``shipped``: the files are in the repository; check they exist.
- ``synthetic``: the files are generated here (:func:`pipeline.ingest.synth.write_synthetic` with params
  ``synth``, seeded, the same bytes every time), after checking the configuration against the
  generator (same folder and file names, same image dimension); so they are generated only when
  the synthetic dataset is in ``run.datasets``.
- ``download``: use files already placed; fetch the missing ones from their official URL (the
  paper's Amazon 2014 sets: :data:`AMAZON2014`); without network, fail with one line saying which
  files to place where.

The manifest lists each configured file (path, size in bytes, sha256) in a fixed order, so the
same files always give the same manifest bytes. A folder of item images (``images`` naming a
folder, :mod:`pipeline.ingest.image_files`) is listed as one entry: its number of files, their
total size and :func:`folder_sha256`, a digest of every file's name and sha256.

Each configured path must be of the kind its key expects: ``reviews``, ``meta`` and ``items`` are
files, ``images`` a ``.b`` file or a folder of images (:func:`check_kinds`); the other way round
is a one-line error naming the key, the path and what was expected.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import urllib.request
from pathlib import Path
from typing import Any, Callable

from pipeline.errors import UserError
from pipeline.ingest.image_files import check_images_path, images_kind, list_folder
from pipeline.log import get_logger, progress
from pipeline.ingest.synth import synthetic_files, write_synthetic
from pipeline.jsonio import write_json
from pipeline.paths import raw_dir

log = get_logger(__name__)

FILE_KEYS = ("reviews", "meta", "images", "items")
WHAT = {"reviews": "the interactions file", "meta": "the item metadata file", "items": "the item table"}
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


def sha256(path: Path, chunk: int = 1 << 20, bar: bool = True) -> str:
    digest = hashlib.sha256()
    quiet = {} if bar else {"disable": True}
    with path.open("rb") as fh, progress(total=path.stat().st_size, desc=f"sha256 {path.name}", unit="B", unit_scale=True, **quiet) as shown:
        while block := fh.read(chunk):
            digest.update(block)
            shown.update(len(block))
    return digest.hexdigest()


def folder_sha256(folder: Path) -> str:
    """The digest of a folder of files: sha256 of the lines ``<sha256 of the file>  <name>``, one per
    non-hidden file directly in ``folder``, in bytewise name order (what ``LC_ALL=C sha256sum * |
    sha256sum`` prints in that folder)."""
    lines = [f"{sha256(p, bar=False)}  {p.name}\n" for p in progress(list_folder(folder), desc=f"sha256 {folder.name}/", unit=" files")]
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def digest(path: Path) -> str:
    """:func:`sha256` of a file, :func:`folder_sha256` of a folder (what a manifest records)."""
    return folder_sha256(path) if path.is_dir() else sha256(path)


def _kind(key: str, cfg: dict[str, Any]) -> str:
    return "folder" if key == "images" and images_kind(cfg) == "folder" else "file"


def present(key: str, path: Path, cfg: dict[str, Any]) -> bool:
    """Whether the raw ``path`` of ``key`` is in place (a folder for an images folder, else a file)."""
    return path.is_dir() if _kind(key, cfg) == "folder" else path.is_file()


def check_kinds(dataset: str, cfg: dict[str, Any]) -> None:
    """Every configured path that exists is of the kind its key expects (a one-line UserError if not)."""
    for key, path in configured_files(cfg).items():
        if key == "images":
            check_images_path(cfg, f"params.yaml: datasets.{dataset}.images")
        elif path.is_dir():
            raise UserError(f"params.yaml: datasets.{dataset}.{key}: {path} is a folder, expected a file ({WHAT.get(key, key)})")


def manifest_entry(path: Path) -> dict[str, Any]:
    """A manifest's record of one raw file (path, bytes, sha256) or folder (path, files, bytes, sha256)."""
    if path.is_dir():
        files = list_folder(path)
        return {"path": path.as_posix(), "files": len(files), "bytes": sum(p.stat().st_size for p in files), "sha256": folder_sha256(path)}
    return {"path": path.as_posix(), "bytes": path.stat().st_size, "sha256": sha256(path)}


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
    missing = {key: path for key, path in configured_files(cfg).items() if not present(key, path, cfg)}
    absent = sorted({p for path in missing.values() for p in path.parents if not p.exists()}, key=lambda p: -len(p.parts))
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
        for folder in absent:  # folders made for the downloads, left empty: gone again
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise UserError(f"{dataset}: raw files missing and not downloadable (offline?); place them here: {'; '.join(failed)}")


def _check_synthetic(dataset: str, cfg: dict[str, Any], synth: dict[str, Any]) -> None:
    """The ``datasets.<ds>`` entry must name the files the generator writes."""

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
    check_kinds(dataset, cfg)
    if source == "synthetic":
        _check_synthetic(dataset, cfg, synth or {})
        written = write_synthetic(next(iter(files.values())).parent, **(synth or {}))
        log.info("%s: generated %s (params synth)", dataset, ", ".join(str(p) for p in written.values()))
    elif source == "download":
        _download(dataset, cfg, fetch)
    check_kinds(dataset, cfg)  # again: a download or the generator may have put something in place
    missing = [str(p) for key, p in files.items() if not present(key, p, cfg)]
    if missing:
        raise UserError(f"{dataset}: raw file(s) not found: {', '.join(missing)}")
    manifest = {
        "dataset": dataset,
        "source": source,
        **({"generated_by": "pipeline.ingest.synth.write_synthetic, params synth"} if source == "synthetic" else {}),
        "files": {key: manifest_entry(path) for key, path in files.items()},
    }
    target = (manifest_dir or raw_dir(dataset)) / "manifest.json"
    write_json(manifest, target)
    log.info("%s: %d raw file(s) in place (%s); wrote %s", dataset, len(files), source, target)
    return manifest
