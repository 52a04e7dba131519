"""Stage commands side by side (pipeline.repro.parallel): a stage run in a forked process behaves as
`python -m stages.<name>` does: the same exit status and output, in its log file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from dvc_cli import dvc
from pipeline.errors import UserError
from pipeline.repro import parallel

ROOT = Path(__file__).resolve().parents[1]


def test_this_checkout_runs_stages_forked_and_another_as_a_subprocess(tmp_path):
    assert parallel._imports_from(ROOT)
    assert not parallel._imports_from(tmp_path)


@pytest.mark.parametrize("forked", [True, False])
def test_a_stage_gives_the_same_status_and_output_forked_or_as_a_subprocess(tmp_path, monkeypatch, forked):
    monkeypatch.setattr(parallel, "_imports_from", lambda repo: forked)
    fails = tmp_path / "fails.log"
    code = parallel._run([sys.executable, "-m", "stages.train", "magazine", "mf", "x"], ROOT, fails)
    assert code == 2
    assert fails.read_text().strip().splitlines()[-1] == "error: train: seed must be an integer, got 'x'"
    helps = tmp_path / "help.log"
    assert parallel._run([sys.executable, "-m", "stages.cli", "--help"], ROOT, helps) == 0
    assert "run-all" in helps.read_text()


def test_run_parallel_names_the_failed_run_and_its_log(tmp_path):
    commands = {"ok": [sys.executable, "-m", "stages.cli", "--help"],
                "bad": [sys.executable, "-m", "stages.train", "magazine", "mf", "x"]}
    with pytest.raises(UserError, match=rf"^bad: .* failed with exit status 2 \(see {tmp_path}/bad.log\)$"):
        parallel.run_parallel(commands, 2, ROOT, tmp_path)
    assert "Usage" in (tmp_path / "ok.log").read_text()


def test_run_all_goes_smallest_dataset_first_by_counted_interactions(tmp_path):
    import json

    from types import SimpleNamespace

    from pipeline.repro.runall import dataset_order

    sources = {"big": "big.gz", "small": "small.gz", "raw_only": "raw.gz", "absent": "none.gz"}
    params = SimpleNamespace(run=SimpleNamespace(datasets=list(sources)),  # what dataset_order reads of Params
                             dataset=lambda name: SimpleNamespace(reviews=sources[name]))
    for name, n, size in (("big", 9000, 10), ("small", 2027, 10_000)):
        (tmp_path / "data" / name / "ingest").mkdir(parents=True)
        (tmp_path / "data" / name / "ingest" / "stats.json").write_text(json.dumps({"n_interactions": n}))
        (tmp_path / sources[name]).write_bytes(b"x" * size)
    (tmp_path / "raw.gz").write_bytes(b"x" * 5)
    # counted datasets first (by their interactions, not their compressed size), then by file size, a missing file last
    assert dataset_order(params, tmp_path) == ["small", "big", "raw_only", "absent"]


def _project(root: Path) -> Path:
    """A DVC project (no git) of three stages whose commands have been run by hand, as train-all runs them."""
    root.mkdir()
    dvc(root, "init", "--no-scm", "-q")
    (root / "params.yaml").write_text("k: 1\n")
    (root / "in.txt").write_text("input\n")
    (root / "dvc.yaml").write_text(
        "stages:\n  make:\n    foreach: [a, b, c]\n    do:\n"
        "      cmd: python -c \"open('${item}.txt', 'w').write(open('in.txt').read() + '${item}')\"\n"
        "      deps: [in.txt]\n      params: [k]\n      outs:\n        - ${item}.txt\n")
    for item in "abc":
        (root / f"{item}.txt").write_text(f"input\n{item}")
    return root


def test_commit_stages_records_what_dvc_commit_force_records(tmp_path):
    by_cli, by_us = _project(tmp_path / "cli"), _project(tmp_path / "us")
    dvc(by_cli, "commit", "--force", "--quiet", "make@a", "make@c")
    parallel.commit_stages(by_us, ["make@a", "make@c"])
    assert (by_us / "dvc.lock").read_text() == (by_cli / "dvc.lock").read_text()
    assert set(yaml.safe_load((by_us / "dvc.lock").read_text())["stages"]) == {"make@a", "make@c"}
    cached = sorted(p.relative_to(by_us / ".dvc" / "cache").as_posix() for p in (by_us / ".dvc" / "cache").rglob("*") if p.is_file())
    assert cached == sorted(p.relative_to(by_cli / ".dvc" / "cache").as_posix()
                            for p in (by_cli / ".dvc" / "cache").rglob("*") if p.is_file())
    assert len([c for c in cached if c.startswith("files/")]) == 2   # a.txt and c.txt, not b.txt
    assert set(json.loads(dvc(by_us, "status", "--json"))) == {"make@b"}


def test_commit_stages_names_a_stage_the_pipeline_does_not_have(tmp_path):
    repo = _project(tmp_path / "p")
    with pytest.raises(UserError, match=r"dvc.yaml: no stage 'make@d' to record in dvc.lock$"):
        parallel.commit_stages(repo, ["make@a", "make@d"])
    assert not (repo / "dvc.lock").exists()


def test_no_run_starts_after_the_deadline_and_a_running_one_is_stopped(tmp_path):
    import time

    marker = tmp_path / "started"
    commands = {"quick": [sys.executable, "-c", "pass"],
                "long": [sys.executable, "-c", "import time; time.sleep(120)"],
                "after": [sys.executable, "-c", f"open({str(marker)!r}, 'w')"]}
    t0 = time.time()
    done = parallel.run_parallel(commands, 1, tmp_path, tmp_path / "logs", deadline=t0 + 6)
    assert set(done) == {"quick"}                     # "long" stopped at the deadline, "after" never started
    assert not marker.exists() and not (tmp_path / "logs" / "after.log").exists()
    assert time.time() - t0 < 60                      # stopped, not waited for
    assert parallel.run_parallel(commands, 2, tmp_path, deadline=time.time() - 1) == {}


def test_budget_minutes_must_be_a_positive_number():
    from stages.repro_check import budget_minutes

    assert budget_minutes("45") == 45.0
    for bad in ("0", "-3", "abc", "inf", "nan"):
        with pytest.raises(UserError, match=rf"^repro_check: --budget-minutes: expected a positive number of minutes, got '{bad}'$"):
            budget_minutes(bad)
