"""A folder of item images: which file belongs to which item (by file name), without decoding.

``datasets.<name>.images`` names either the Amazon 2014 CNN-vector file (a name ending in
``.b``, :mod:`pipeline.ingest.image_features`) or a **folder of image files**, one per item. In
a folder, a file's name gives its item id:

* without ``images_pattern``: the name is the item id plus an image extension
  (:data:`IMAGE_EXTENSIONS`, any case), e.g. ``B00012.jpg`` or ``42.png``;
* with ``images_pattern``: the pattern with ``{item}`` where the id stands and ``*`` for any run
  of characters, e.g. ``{item}.jpg`` (MovieLens' posters ``1.jpg`` ... ``1682.jpg``) or
  ``poster_{item}_*.png``. Ids are matched to the dataset's item ids as text.

Only the files directly in the folder count (no subfolders); hidden files (``.gitignore``) are
ignored. A file whose name the pattern does not match, a file for an id that is not an item of
the dataset (including items the k-core removed), and a second file for one id (the first in
name order is kept) are each counted, never an error: the features stage reports the counts.
This module only matches names (ingest counts coverage with it); decoding and encoding are in
:mod:`pipeline.features.image_files`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from pipeline.errors import UserError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff")
FEATURE_FILE_SUFFIX = ".b"
PLACEHOLDER = "{item}"
DEFAULT_PATTERN = "{item}.<image extension>"


def images_kind(cfg: Mapping[str, Any]) -> str | None:
    """What ``images`` of a dataset entry names: ``"vectors"`` (an Amazon 2014 ``.b`` file),
    ``"folder"`` (image files), or None (no ``images``). Decided by the entry, not by what is on
    disk: a name ending in ``.b`` is a feature file, anything else a folder."""
    images = cfg.get("images")
    if not images:
        return None
    return "vectors" if str(images).lower().endswith(FEATURE_FILE_SUFFIX) else "folder"


def check_images_path(cfg: Mapping[str, Any], key: str = "images", *, must_exist: bool = False) -> Path | None:
    """The ``images`` path of an entry after checking it is the kind the entry says (None without one).

    A folder where the ``.b`` file is expected, a file where a folder is expected, or
    ``images_pattern`` beside a ``.b`` file is a one-line UserError naming ``key`` (e.g.
    ``params.yaml: datasets.mine.images``), the path and what was expected. A missing path is an
    error only with ``must_exist``."""
    kind = images_kind(cfg)
    if kind is None:
        return None
    path = Path(cfg["images"])
    if kind == "vectors" and cfg.get("images_pattern"):
        raise UserError(f"{key}_pattern: {cfg['images_pattern']!r} applies to a folder of image files, but {key} is "
                        f"{path}, an Amazon 2014 image feature file (a name ending in .b)")
    if kind == "vectors" and path.is_dir():
        raise UserError(f"{key}: {path} is a folder, expected an Amazon 2014 image feature file (a name ending in .b "
                        "is read as one; name a folder of item images without the .b)")
    if kind == "folder" and path.exists() and not path.is_dir():
        raise UserError(f"{key}: {path} is a file, expected a folder of item images (one file per item, "
                        f"named by item id{'' if not cfg.get('images_pattern') else ' as ' + repr(cfg['images_pattern'])}; "
                        "an Amazon 2014 feature file's name ends in .b)")
    if must_exist and not path.exists():
        raise UserError(f"{key}: {path} not found (expected {'a folder of item images' if kind == 'folder' else 'an image feature file'})")
    return path


def compile_pattern(pattern: str | None) -> re.Pattern[str]:
    """The regular expression of an ``images_pattern`` (None: item id + an image extension).

    ``{item}`` (exactly once) captures the id, ``*`` matches any run of characters, everything
    else is literal; the whole file name must match."""
    if pattern is None:
        exts = "|".join(re.escape(e[1:]) for e in IMAGE_EXTENSIONS)
        return re.compile(rf"(?P<item>.+)\.(?:{exts})", re.IGNORECASE)
    check_pattern(pattern)
    before, after = pattern.split(PLACEHOLDER)
    literal = lambda part: ".*".join(re.escape(p) for p in part.split("*"))  # noqa: E731
    return re.compile(f"{literal(before)}(?P<item>.+){literal(after)}")


def check_pattern(pattern: str) -> str:
    """``pattern`` if it is a valid ``images_pattern``, else a ValueError saying why."""
    if pattern.count(PLACEHOLDER) != 1:
        raise ValueError(f"{pattern!r} must hold {PLACEHOLDER} exactly once (where the item id stands in the file name)")
    if "/" in pattern or "\\" in pattern:
        raise ValueError(f"{pattern!r} is a file name pattern; it cannot name a subfolder")
    return pattern


def list_folder(folder: Path) -> list[Path]:
    """The regular, non-hidden files directly in ``folder``, sorted by name (bytewise, as ``LC_ALL=C``)."""
    if not folder.is_dir():
        raise UserError(f"{folder}: images folder not found" if not folder.exists() else f"{folder}: not a folder")
    return sorted((p for p in folder.iterdir() if not p.name.startswith(".") and p.is_file()), key=lambda p: p.name.encode())


@dataclass(frozen=True)
class ImageFileMatch:
    """Which file each item id has, and what was left over (each counted)."""

    files: dict[str, Path]  # item id -> its file (the first in name order)
    n_files: int  # files in the folder (non-hidden, regular)
    n_not_matching: int  # names the pattern does not match
    n_unknown: int  # files for ids that are not items of the dataset
    n_duplicate: int  # further files for an id that already has one
    examples: dict[str, list[str]] = field(default_factory=dict)  # reason -> up to 3 file names

    def counts(self) -> dict[str, int]:
        return {"in_folder": self.n_files, "matched": len(self.files), "not_matching_pattern": self.n_not_matching,
                "unknown_item": self.n_unknown, "duplicate_for_an_item": self.n_duplicate}


def match_image_files(folder: str | Path, ids: Iterable[str], pattern: str | None = None) -> ImageFileMatch:
    """Map the item ``ids`` to the files of ``folder`` by ``pattern`` (see the module docstring)."""
    wanted = set(ids)
    regex = compile_pattern(pattern)
    files: dict[str, Path] = {}
    examples: dict[str, list[str]] = {}
    counts = {"not_matching_pattern": 0, "unknown_item": 0, "duplicate_for_an_item": 0}
    paths = list_folder(Path(folder))

    def skip(reason: str, name: str) -> None:
        counts[reason] += 1
        if len(examples.setdefault(reason, [])) < 3:
            examples[reason].append(name)

    for path in paths:
        found = regex.fullmatch(path.name)
        if found is None:
            skip("not_matching_pattern", path.name)
        elif found["item"] not in wanted:
            skip("unknown_item", path.name)
        elif found["item"] in files:
            skip("duplicate_for_an_item", path.name)
        else:
            files[found["item"]] = path
    found = ImageFileMatch(files, len(paths), counts["not_matching_pattern"], counts["unknown_item"],
                           counts["duplicate_for_an_item"], examples)
    if not files and wanted:
        example = next(iter(paths), None)
        raise UserError(
            f"{folder}: none of its {len(paths)} files is named for an item of the dataset by the pattern "
            f"{pattern or DEFAULT_PATTERN!r} (e.g. item {min(wanted)!r}"
            + (f", file {example.name!r}" if example else "") + "); set images_pattern to how the files are named"
        )
    return found
