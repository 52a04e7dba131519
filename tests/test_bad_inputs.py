"""Unusual inputs a new user tries (issue of 2026-12-03, items 2-4): each is a one-line `error: ...`
with exit status 2, or a counted change that is reported; outputs are written atomically (a failure
leaves the output folder as it was). One test per case, asserting the message or the count."""

from __future__ import annotations

import copy
import json
import logging
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
import yaml

from conftest import shipped_params, simgr
from pipeline.atomic import atomic_dir, atomic_file, staged_files
from pipeline.errors import UserError
from pipeline.ingest.dataset import ingest as ingest_source  # noqa: F401  (the log handler writes to the real stderr)


ROOT = Path(__file__).resolve().parents[1]


def one_line(code: int, err: str) -> str:
    """The message of a one-line error (asserting it is one)."""
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: "), err
    return err[len("error: "):].rstrip("\n")


def ratings(path: Path, *, header: str | None = "user_id,item_id,rating,timestamp", timestamps=lambda k: 1_600_000_000 + 60 * k,
            prefix: bytes = b"", n_users: int = 8, n_items: int = 6) -> Path:
    """A small dense ratings CSV (every user rates every item), rows in user and time order; ``timestamps``
    None: no timestamp column."""
    if timestamps is None and header:
        header = header.removesuffix(",timestamp")
    lines = [header] if header else []
    k = 0
    for u in range(n_users):
        for i in range(n_items):
            t = timestamps(k) if timestamps else None
            lines.append(f"u{u},i{i},{1 + (u + i) % 5}" + (f",{t}" if t is not None else ""))
            k += 1
    path.write_bytes(prefix + ("\n".join(lines) + "\n").encode())
    return path


def ingest_args(reviews: Path, out: Path, *extra: str) -> list[str]:
    return ["ingest", "--reviews", str(reviews), "--out", str(out), "--kcore", "0", *extra]


# ---- item 2: silent cases ------------------------------------------------------------------


def test_temporal_split_without_timestamps_is_refused(tmp_path, monkeypatch, capsys):
    path = ratings(tmp_path / "r.csv", timestamps=None)
    code, _, err = simgr(monkeypatch, capsys, *ingest_args(path, tmp_path / "out", "--split", "temporal"))
    assert one_line(code, err) == (
        f"--split: temporal orders the interactions by time, but {path} has no timestamp column (every timestamp reads as 0); "
        "split randomly instead, or say which column holds the timestamps: datasets.<name>.fields, or simgr ingest --columns "
        "user,item,rating,timestamp")
    assert not (tmp_path / "out").exists()


def test_temporal_split_in_params_names_the_params_key(tmp_path):
    from pipeline.ingest.dataset import ingest
    from pipeline.settings.sections import Ingest

    path = ratings(tmp_path / "r.csv", timestamps=lambda k: 1_600_000_000)
    with pytest.raises(UserError, match=rf"^params.yaml: ingest.split: temporal orders the interactions by time, but {path} has one "
                                        r"timestamp, 1600000000, on all 48 rows; split randomly instead"):
        ingest({"reviews": str(path)}, Ingest(kcore=0, split="temporal"), tmp_path / "out")


def test_seconds_mixed_with_milliseconds_are_converted_and_counted(tmp_path, monkeypatch, capsys):
    # every third row in milliseconds: read as it is, all of them would sort after every row in seconds
    path = ratings(tmp_path / "r.csv", timestamps=lambda k: (1_600_000_000 + 60 * k) * (1000 if k % 3 == 0 else 1))
    code, out, err = simgr(monkeypatch, capsys, *ingest_args(path, tmp_path / "out", "--split", "temporal"))
    assert code == 0, err
    assert out.rstrip().endswith("; timestamps converted to seconds: 16 in milliseconds")
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["timestamps"] == {"converted_to_seconds": {"milliseconds": 16}}
    inter = pl.read_parquet(tmp_path / "out" / "interactions.parquet")
    assert inter["timestamp"].max() < 10**11  # all in seconds now
    # the split follows time: train holds the first 80% of the rows in file (= time) order, whatever their unit
    latest_train = inter.filter(pl.col("split") == "train")["timestamp"].max()
    assert latest_train < inter.filter(pl.col("split") != "train")["timestamp"].min()
    assert latest_train == 1_600_000_000 + 60 * 37  # 38 of 48 rows: floor(0.8 * 48)


def test_one_unit_of_timestamps_is_kept_as_it_is():
    from pipeline.ingest.split import timestamps_in_seconds

    ms = np.array([1_600_000_000_000, 1_600_000_000_500, 0])
    assert timestamps_in_seconds(ms)[1] == {} and timestamps_in_seconds(ms)[0].tolist() == ms.tolist()
    mixed = np.array([1_600_000_000, 1_600_000_001_000, 1_600_000_002_000_000, 0])
    ts, converted = timestamps_in_seconds(mixed)
    assert ts.tolist() == [1_600_000_000, 1_600_000_001, 1_600_000_002, 0]
    assert converted == {"milliseconds": 1, "microseconds": 1}


def _params_dir(tmp_path: Path, **changes) -> dict:
    params = shipped_params(**changes)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return params


def test_tune_of_an_unknown_dataset_writes_nothing(tmp_path, monkeypatch, capsys):
    _params_dir(tmp_path, tune__enabled=False)
    monkeypatch.chdir(tmp_path)
    code, _, err = simgr(monkeypatch, capsys, "tune", "nosuchds", "mf")
    assert one_line(code, err) == "params.yaml: unknown dataset 'nosuchds' (datasets: " + ", ".join(
        shipped_params()["datasets"]) + ")"
    assert not (tmp_path / "tuning").exists()


def test_simgr_check_refuses_a_key_written_twice(tmp_path, monkeypatch, capsys):
    lines = (ROOT / "params.yaml").read_text().split("\n")
    first = lines.index("pst:") + 1 + [ln.startswith("  nu:") for ln in lines[lines.index("pst:") + 1:]].index(True)
    lines.insert(first + 2, "  nu: 0.8")  # after pst's delta: last wins, silently, in PyYAML
    (tmp_path / "params.yaml").write_text("\n".join(lines))
    line, first = first + 3, first + 1
    monkeypatch.chdir(tmp_path)
    code, _, err = simgr(monkeypatch, capsys, "check")
    assert one_line(code, err).startswith(f"params.yaml:{line}: key 'nu' is written twice in one mapping (first on line {first}; "
                                            "YAML keys are unique, remove one)")


def test_failed_ingest_says_the_folder_holds_the_earlier_outputs(tmp_path, monkeypatch, capsys):
    good = ratings(tmp_path / "good.csv")
    out = tmp_path / "out"
    code, _, err = simgr(monkeypatch, capsys, *ingest_args(good, out))
    assert code == 0, err
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    bad = tmp_path / "bad.csv"
    bad.write_text("user_id,item_id,timestamp\nu1,i1,5\n")
    code, _, err = simgr(monkeypatch, capsys, *ingest_args(bad, out))
    assert one_line(code, err).endswith(
        f"no rating column; columns found: ['user_id', 'item_id', 'timestamp']; say which column it is: datasets.<name>.fields, "
        f"or simgr ingest --columns user,item,rating[,timestamp] [nothing written: {out} still holds the earlier outputs "
        "interactions.parquet, users.parquet, items.parquet, stats.json, unchanged]")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary folder left


def test_download_offline_leaves_no_empty_folder(tmp_path):
    from pipeline.ingest.download import acquire

    raw = tmp_path / "data" / "raw" / "baby"
    cfg = {"source": "download", "reviews": str(raw / "reviews_Baby_5.json.gz")}

    def offline(url, dest):  # as urllib_fetch: the folder is made, then the connection fails
        dest.parent.mkdir(parents=True, exist_ok=True)
        raise OSError("network is unreachable")

    with pytest.raises(UserError, match=r"^baby: raw files missing and not downloadable \(offline\?\); place them here: "):
        acquire("baby", cfg, fetch=offline, manifest_dir=raw)
    assert not (tmp_path / "data").exists()


def _all_fives(n_users: int = 6, n_items: int = 8) -> pl.DataFrame:
    rows = [(u, i, 5.0, "train" if i < 6 else ("valid" if i == 6 else "test")) for u in range(n_users) for i in range(n_items)]
    u, i, r, s = zip(*rows)
    return pl.DataFrame({"user": pl.Series(u, dtype=pl.Int32), "item": pl.Series(i, dtype=pl.Int32),
                         "rating": pl.Series(r, dtype=pl.Float32), "timestamp": pl.Series(range(len(u)), dtype=pl.Int64),
                         "split": pl.Series(s, dtype=pl.String)})


class _Lines(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def test_graph_without_a_positive_edge_is_a_warning_saying_what_it_means(tmp_path, monkeypatch):
    import stages.graph as stage
    from pipeline.schemas import write_table

    write_table(_all_fives(), "interactions", tmp_path / "data" / "toy" / "ingest" / "interactions.parquet")
    params = _params_dir(tmp_path, datasets__toy={"format": "generic", "reviews": "r.csv"}, run__datasets=["toy"],
                         pst={"enabled": True, "nu": 1.0, "delta": 3.0}, apfi={"enabled": False}, tune__enabled=False)
    assert params["pst"]["nu"] == 1.0
    monkeypatch.chdir(tmp_path)
    handler = _Lines()
    logging.getLogger("simgr").addHandler(handler)
    try:
        stage.main("toy")
    finally:
        logging.getLogger("simgr").removeHandler(handler)
    assert ("toy: the signed graph has no positive edge (all 36 edges are negative; pst.nu = 1: a rating is positive above "
            "nu * its user's mean - (1 - nu) * their spread): SGA's positive branch has no edges, so SiMGR and the variants "
            "reading the graph learn from the negative branch alone; to change it, lower pst.nu (e.g. 0.5)") in handler.lines


def test_graph_without_a_negative_edge_names_the_global_delta():
    from pipeline.graph.signed import GraphSettings
    from pipeline.settings.sections import APFI, PST
    from stages.graph import one_sided

    metrics = {"observed_positive": 10, "pseudo_positive": 2, "observed_negative": 0, "pseudo_negative": 0}
    lines = one_sided("toy", metrics, GraphSettings(PST(enabled=False, nu=0.5, delta=0.5), APFI(enabled=False)))
    assert lines == ["toy: the signed graph has no negative edge (all 12 edges are positive; pst.enabled false, pst.delta = 0.5: "
                     "a rating is positive above delta): SGA's negative branch has no edges, so SiMGR and the variants reading "
                     "the graph learn from the positive branch alone; to change it, raise pst.delta"]
    assert one_sided("toy", {**metrics, "observed_negative": 1}, GraphSettings(PST(), APFI())) == []


# ---- item 3: misleading cases --------------------------------------------------------------


def test_a_utf8_byte_order_mark_before_the_header_is_skipped(tmp_path, monkeypatch, capsys):
    path = ratings(tmp_path / "r.csv", prefix=b"\xef\xbb\xbf")
    code, out, err = simgr(monkeypatch, capsys, *ingest_args(path, tmp_path / "out"))
    assert code == 0, err
    assert out.startswith(f"{tmp_path / 'out'}: 8 users, 6 items, 48 interactions")
    assert pl.read_parquet(tmp_path / "out" / "users.parquet")["user_id"][0] == "u0"  # no BOM in the first id
    headerless = ratings(tmp_path / "h.csv", header=None, prefix=b"\xef\xbb\xbf")
    code, _, err = simgr(monkeypatch, capsys, *ingest_args(headerless, tmp_path / "out2"))
    assert code == 0, err
    assert pl.read_parquet(tmp_path / "out2" / "users.parquet")["user_id"][0] == "u0"


def test_utf16_text_is_one_line(tmp_path, monkeypatch, capsys):
    path = tmp_path / "r.csv"
    path.write_bytes("user,item,rating\nu1,i1,5\n".encode("utf-16"))
    code, _, err = simgr(monkeypatch, capsys, *ingest_args(path, tmp_path / "out"))
    assert one_line(code, err) == f"{path}: UTF-16 text (it starts with a UTF-16 byte-order mark); save it as UTF-8 (or latin-1) text"


def test_a_latin1_byte_names_its_line_and_the_encoding(tmp_path, monkeypatch, capsys):
    path = ratings(tmp_path / "r.csv")
    lines = path.read_bytes().split(b"\n")
    lines[11] = lines[11].replace(b"u1,", "u\xe9,".encode("latin-1"))  # line 12
    path.write_bytes(b"\n".join(lines))
    code, _, err = simgr(monkeypatch, capsys, *ingest_args(path, tmp_path / "out"))
    assert one_line(code, err) == (
        f"{path}:12: not utf-8 text (byte 0xe9 at column 2: the file has another encoding, e.g. latin-1); give the file's "
        "encoding: datasets.<name>.encoding (items_encoding for the item table), or simgr ingest --encoding latin-1")
    code, out, err = simgr(monkeypatch, capsys, *ingest_args(path, tmp_path / "out", "--encoding", "latin-1"))
    assert code == 0, err
    assert "u\xe9" in pl.read_parquet(tmp_path / "out" / "users.parquet")["user_id"].to_list()
    code, _, err = simgr(monkeypatch, capsys, *ingest_args(path, tmp_path / "out2", "--encoding", "klingon"))
    assert one_line(code, err) == "unknown text encoding 'klingon' (e.g. utf-8, latin-1)"


def test_a_latin1_header_is_an_encoding_error_on_line_1(tmp_path, monkeypatch, capsys):
    path = tmp_path / "r.csv"
    path.write_bytes("user,item,rating,d\xe9j\xe0\nu1,i1,5,1\n".encode("latin-1"))
    code, _, err = simgr(monkeypatch, capsys, *ingest_args(path, tmp_path / "out"))
    assert one_line(code, err).startswith(f"{path}:1: not utf-8 text (byte 0xe9 at column 19")


def test_a_folder_given_as_reviews(tmp_path, monkeypatch, capsys):
    code, _, err = simgr(monkeypatch, capsys, *ingest_args(tmp_path, tmp_path / "out"))
    assert one_line(code, err) == f"{tmp_path}: is a folder, expected the reviews file"


@pytest.fixture
def trained(tmp_path, monkeypatch):
    """A toy dataset with trained runs (test_evaluate_stage's fake one) as the current folder."""
    from test_evaluate_stage import PARAMS, write_fake_dataset

    write_fake_dataset(tmp_path, PARAMS, seed=2)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("command", [
    ["recommend", "--dataset", "nosuchds", "--model", "mf", "--user", "U001"],
    ["export", "--dataset", "nosuchds", "--model", "mf"],
    ["export", "--dataset", "nosuchds", "--format", "mmrec"],
    ["train", "nosuchds", "mf", "1"],
], ids=["recommend", "export", "export-mmrec", "train"])
def test_unknown_dataset_names_the_known_ones(trained, monkeypatch, capsys, command):
    code, _, err = simgr(monkeypatch, capsys, *command)
    assert one_line(code, err).startswith("params.yaml: unknown dataset 'nosuchds' (datasets: ")
    assert "toy" in err and "train it" not in err


@pytest.mark.parametrize("command, expected", [
    (["recommend", "--dataset", "toy", "--model", "simgrr", "--user", "U001"], "params.yaml: unknown model 'simgrr' (did you mean 'simgr'?) (models: "),
    (["export", "--dataset", "toy", "--model", "nosuchmodel"], "params.yaml: unknown model 'nosuchmodel' (models: "),
    (["train", "toy", "simgrr", "1"], "params.yaml: models has no entry 'simgrr' (did you mean 'simgr'?) (entries: "),
], ids=["recommend", "export", "train"])
def test_unknown_model_names_the_known_ones(trained, monkeypatch, capsys, command, expected):
    code, _, err = simgr(monkeypatch, capsys, *command)
    assert one_line(code, err).startswith(expected) and " mf, " in err


def test_recommend_unknown_user_says_where_ids_come_from(trained, monkeypatch, capsys):
    code, _, err = simgr(monkeypatch, capsys, "recommend", "--dataset", "toy", "--model", "mf", "--user", "nobody")
    assert one_line(code, err) == ("data/toy/ingest/users.parquet: unknown user 'nobody' (not among the 30 users of this dataset, "
                                   "e.g. 'U000', 'U001', 'U002': the raw user ids of the reviews file, column user_id of this table)")


def test_recommend_a_skipped_run_says_why(trained, monkeypatch, capsys):
    from pipeline.skipped import write_skipped

    write_skipped(trained / "models" / "toy" / "mf-1", "mf reads item features, and toy has none")
    code, _, err = simgr(monkeypatch, capsys, "recommend", "--dataset", "toy", "--model", "mf", "--user", "U001")
    assert one_line(code, err) == ("models/toy/mf-1: the run was skipped (mf reads item features, and toy has none), so there is "
                                   "nothing to recommend")


def test_train_outside_dvc_before_the_study_says_how_to_run_it(trained, monkeypatch, capsys):
    code, _, err = simgr(monkeypatch, capsys, "train", "toy", "mf", "1")
    assert one_line(code, err) == (
        "tuning/toy/mf/selected.json: not found: mf takes models.mf.reg, train.lr (auto) from the study of mf on toy, which has not "
        "run; run it (simgr tune toy mf, or dvc repro), or train without it: give those keys values, or set tune.enabled: false "
        "(every auto at its default; dvc exp run -S tune.enabled=false)")


def test_every_stage_has_a_simgr_command_ingest_of_a_configured_dataset(tmp_path, monkeypatch, capsys):
    raw = tmp_path / "data" / "raw" / "mine"
    raw.mkdir(parents=True)
    ratings(raw / "ratings.csv")
    _params_dir(tmp_path, datasets__mine={"format": "generic", "source": "shipped", "reviews": "data/raw/mine/ratings.csv"},
                ingest={"kcore": 2, "split": "temporal", "seed": 1, "rating_min": 1, "rating_max": 5, "on_error": "raise"})
    monkeypatch.chdir(tmp_path)
    code, _, err = simgr(monkeypatch, capsys, "ingest", "mine")
    assert code == 0, err
    stats = json.loads((tmp_path / "data" / "mine" / "ingest" / "stats.json").read_text())
    assert stats["n_interactions"] == 48 and stats["split"]["method"] == "temporal"
    code, _, err = simgr(monkeypatch, capsys, "ingest", "mine", "--out", "x")
    assert one_line(code, err).startswith("simgr ingest mine: ingests the dataset of params.yaml into data/mine/ingest/")
    code, _, err = simgr(monkeypatch, capsys, "ingest")
    assert one_line(code, err) == ("simgr ingest: give a dataset of params.yaml (simgr ingest magazine), or --reviews FILE and "
                                   "--out FOLDER")


# ---- item 4: outputs written atomically; bad output paths -------------------------------------


@pytest.mark.parametrize("where, expected", [
    ("file", "--out {out}: exists and is not a folder (the outputs are four files in a folder)"),
    ("under-file", "--out {out}: {parent} is a file, so no folder can be made under it"),
    ("unwritable", "--out {out}: cannot create the folder ("),
])
def test_ingest_out_that_cannot_be_a_folder(tmp_path, monkeypatch, capsys, where, expected):
    path = ratings(tmp_path / "r.csv")
    parent = tmp_path / "taken.txt"
    parent.write_text("x")
    out = {"file": parent, "under-file": parent / "sub" / "out", "unwritable": Path("/proc/simgr-no/out")}[where]
    code, _, err = simgr(monkeypatch, capsys, *ingest_args(path, out))
    assert one_line(code, err).startswith(expected.format(out=out, parent=parent))
    assert parent.read_text() == "x"


def test_export_out_under_a_file_and_a_failed_export_leave_nothing(trained, monkeypatch, capsys):
    import faiss

    (trained / "taken").write_text("x")
    code, _, err = simgr(monkeypatch, capsys, "export", "--dataset", "toy", "--model", "mf", "--out", "taken/out")
    assert one_line(code, err) == "--out taken/out: taken is a file, so no folder can be made under it"

    def broken(index, path):  # the 4th of 7 files: before, export left the first ones behind
        raise UserError(f"{path}: cannot write the index")

    monkeypatch.setattr(faiss, "write_index", broken)
    code, _, err = simgr(monkeypatch, capsys, "export", "--dataset", "toy", "--model", "mf")
    assert "cannot write the index" in one_line(code, err)
    assert not (trained / "exports").exists()  # neither the folder nor a temporary sibling
    monkeypatch.undo()
    monkeypatch.chdir(trained)
    code, _, err = simgr(monkeypatch, capsys, "export", "--dataset", "toy", "--model", "mf")
    assert code == 0, err
    assert sorted(p.name for p in (trained / "exports" / "toy").iterdir()) == ["mf-1"]
    assert len(list((trained / "exports" / "toy" / "mf-1").iterdir())) == 7


def test_ingest_failing_while_writing_leaves_the_folder_as_it_was(tmp_path, monkeypatch):
    from pipeline.ingest import dataset
    from pipeline.settings.sections import Ingest

    path = ratings(tmp_path / "r.csv")
    out = tmp_path / "out"
    dataset.ingest({"reviews": str(path)}, Ingest(kcore=0), out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real = dataset.write_json

    def disk_full(obj, target):  # stats.json, the last of the four files
        raise OSError(28, "No space left on device", str(target))

    monkeypatch.setattr(dataset, "write_json", disk_full)
    with pytest.raises(UserError, match="No space left on device"):
        dataset.ingest({"reviews": str(path)}, Ingest(kcore=0, seed=5), out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # interactions.parquet of seed 5 was not moved in
    monkeypatch.setattr(dataset, "write_json", real)
    dataset.ingest({"reviews": str(path)}, Ingest(kcore=0, seed=5), out)
    assert (out / "interactions.parquet").read_bytes() != before["interactions.parquet"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "r.csv"]


def test_atomic_helpers_replace_on_success_and_leave_the_target_on_failure(tmp_path):
    folder = tmp_path / "vectors"
    with atomic_dir(folder) as tmp:
        (tmp / "text.npy").write_text("1")
        (tmp / "image.npy").write_text("1")
    with pytest.raises(RuntimeError):
        with atomic_dir(folder) as tmp:
            (tmp / "text.npy").write_text("2")
            raise RuntimeError("half-way")
    assert {p.name: p.read_text() for p in folder.iterdir()} == {"text.npy": "1", "image.npy": "1"}
    with atomic_dir(folder) as tmp:  # a modality dropped: its file goes with the old folder
        (tmp / "text.npy").write_text("3")
    assert {p.name: p.read_text() for p in folder.iterdir()} == {"text.npy": "3"}

    target = tmp_path / "stats.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_file(target) as tmp:
            tmp.write_text("new, half")
            raise RuntimeError("half-way")
    assert target.read_text() == "old"

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("the user's")
    (mine / "image_feat.npy").write_text("stale")
    with staged_files(mine, ["a.inter", "image_feat.npy"]) as tmp:
        (tmp / "a.inter").write_text("a")
    assert sorted(p.name for p in mine.iterdir()) == ["a.inter", "notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "stats.json", "vectors"]


def test_an_os_error_reaching_an_entry_point_is_one_line(tmp_path, monkeypatch, capsys):
    from stages._main import run_stage

    def unreadable():
        raise PermissionError(13, "Permission denied", "data/raw/mine/ratings.csv")

    with pytest.raises(SystemExit) as exit_:
        run_stage(unreadable, [])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == "error: data/raw/mine/ratings.csv: Permission denied\n"
    monkeypatch.setattr("stages.cli._stage", lambda *args: unreadable())
    code, _, err = simgr(monkeypatch, capsys, "features", "magazine")
    assert one_line(code, err) == "data/raw/mine/ratings.csv: Permission denied"


# ---- further paths to a traceback, found by trying the commands ---------------------------------


def test_a_bad_option_or_argument_is_one_line(monkeypatch, capsys):
    code, _, err = simgr(monkeypatch, capsys, "train", "toy", "mf", "x")
    assert one_line(code, err).startswith("simgr train: Invalid value for 'seed': ")
    assert err.rstrip().endswith("(see simgr train --help)")
    code, _, err = simgr(monkeypatch, capsys, "ingest", "--bogus")
    assert one_line(code, err).startswith("simgr ingest: No such option: --bogus")
    code, _, err = simgr(monkeypatch, capsys, "nosuchcmd")
    assert one_line(code, err) == "simgr: No such command 'nosuchcmd'. (see simgr --help)"


def test_a_file_that_is_not_parquet_after_all(tmp_path, monkeypatch, capsys):
    path = tmp_path / "r.parquet"
    path.write_bytes(b"PAR1 but nothing else")
    code, _, err = simgr(monkeypatch, capsys, *ingest_args(path, tmp_path / "out"))
    assert one_line(code, err).startswith(f"{path}: not a readable parquet file (ComputeError: ")


def test_empty_paths_and_sizes_given_as_options(tmp_path, monkeypatch, capsys):
    path = ratings(tmp_path / "r.csv")
    code, _, err = simgr(monkeypatch, capsys, "ingest", "--reviews", str(path), "--out", "")
    assert one_line(code, err) == "--out: empty path"
    code, _, err = simgr(monkeypatch, capsys, *ingest_args(path, tmp_path / "o", "--image-dim", "0"))
    assert one_line(code, err) == "--image-dim: expected a positive number of floats per record, got 0"
    code, _, err = simgr(monkeypatch, capsys, "train-all", "--jobs", "0")
    assert one_line(code, err) == "--jobs: expected at least 1 training run at a time, got 0"


def test_train_all_outside_a_dvc_repository(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, _, err = simgr(monkeypatch, capsys, "train-all")
    assert one_line(code, err).startswith(f"{tmp_path}: `dvc status` failed (exit ")


def test_a_corrupt_checkpoint_to_resume_from(tmp_path):
    from pipeline.training.checkpoint import load

    path = tmp_path / "checkpoint.pt"
    path.write_text("garbage\n")
    with pytest.raises(UserError, match=rf"^{path}: not a readable checkpoint \(\w+\); rerun without --resume to start over$"):
        load(path, {})


def test_a_run_folder_that_is_a_file(trained, monkeypatch, capsys):
    (trained / "models" / "toy" / "mf-7").write_text("x")
    _params_dir(trained, **{**yaml.safe_load((trained / "params.yaml").read_text()), "tune": {**shipped_params()["tune"], "enabled": False}})
    code, _, err = simgr(monkeypatch, capsys, "train", "toy", "mf", "7")
    assert one_line(code, err) == "models/toy/mf-7: exists and is not a folder"


def test_a_stage_module_run_without_its_arguments_names_itself(tmp_path):
    import subprocess

    done = subprocess.run([sys.executable, "-m", "stages.train"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr == ("error: usage: python -m stages.train <arguments> (main() missing 2 required positional arguments: "
                           "'dataset' and 'model')\n")
