"""MMRec .inter import: ids and split kept exactly; gaps and bad labels are user errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest

from pipeline.errors import UserError
from pipeline.ingest.dataset import ingest
from pipeline.settings.sections import Ingest

FIX = Path(__file__).parent / "fixtures" / "ingest"


def test_ids_and_split_are_kept_exactly(tmp_path):
    stats = ingest({"reviews": str(FIX / "toy.inter")}, Ingest(kcore=5), tmp_path)  # auto-detected; no k-core
    inter = pl.read_parquet(tmp_path / "interactions.parquet")
    assert inter.rows() == [
        (0, 0, 5.0, 10, "train"), (0, 1, 3.0, 11, "train"), (1, 1, 4.0, 12, "valid"),
        (1, 2, 2.0, 13, "train"), (2, 0, 1.0, 14, "test"), (2, 2, 5.0, 15, "train"),
    ]
    assert pl.read_parquet(tmp_path / "users.parquet").rows() == [(0, "alice"), (1, "bob"), (2, "carol")]
    assert pl.read_parquet(tmp_path / "items.parquet").rows() == [(0, "B000A"), (1, "B000B"), (2, "B000C")]
    assert stats["format"] == "mmrec" and stats["splits"] == {"train": 4, "valid": 1, "test": 1}
    assert stats["kcore"]["k"] is None and stats["split"]["method"] == "given"


def test_without_id_maps_the_numbers_are_the_raw_ids(tmp_path):
    shutil.copy(FIX / "toy.inter", tmp_path / "toy.inter")
    ingest({"format": "mmrec", "reviews": str(tmp_path / "toy.inter")}, Ingest(), tmp_path / "out")
    assert pl.read_parquet(tmp_path / "out" / "items.parquet")["asin"].to_list() == ["0", "1", "2"]


def test_non_contiguous_ids_and_bad_labels(tmp_path):
    gap = tmp_path / "gap.inter"
    gap.write_text("userID\titemID\tx_label\n0\t0\t0\n1\t3\t0\n")
    with pytest.raises(UserError, match=r"gap.inter: column 'itemID' must hold contiguous 0-based ids .* found 2 distinct ids in 0..3"):
        ingest({"format": "mmrec", "reviews": str(gap)}, Ingest(), tmp_path / "o1")
    label = tmp_path / "label.inter"
    label.write_text("userID\titemID\tx_label\n0\t0\t0\n1\t1\t7\n")
    with pytest.raises(UserError, match=r"label.inter:3: x_label must be 0, 1 or 2"):
        ingest({"format": "mmrec", "reviews": str(label)}, Ingest(), tmp_path / "o2")
