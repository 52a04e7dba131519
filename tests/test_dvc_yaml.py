"""dvc.yaml: its generated stages are current; `make run`'s run-all; what `dvc exp run -S pst.nu=0.8` re-runs.

The second test runs DVC itself on a small own dataset in a temporary repository: `simgr run-all`
(what `make run` runs) builds it to a state `dvc status` calls up to date; then setting a value
SiMGR's study sweeps (pst.nu, `auto` in params.yaml) re-runs the check, the signed graph and the
models that read PST's thresholds, at that value, and no study (issue 22's acceptance test).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.run.dvcyaml import current, generated
from test_own_data import write_own_data

ROOT = Path(__file__).resolve().parents[1]


def test_generated_stages_are_current():
    assert current((ROOT / "dvc.yaml").read_text()) == generated(), "run `python -m pipeline.run.dvcyaml` (pipeline/run/groups.py changed)"


def _project(root: Path) -> dict:
    """A git + DVC repository holding the pipeline's code, dvc.yaml and a small own dataset `mine`, tuned."""
    for name in ("pipeline", "stages"):
        shutil.copytree(ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", ".dvcignore", ".gitignore"):
        shutil.copy(ROOT / name, root / name)
    (root / "data").mkdir()
    shutil.copy(ROOT / "data" / ".gitignore", root / "data" / ".gitignore")
    write_own_data(root / "data" / "raw" / "mine")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["datasets"]["mine"] = {"format": "generic", "source": "shipped", "reviews": "data/raw/mine/ratings.csv",
                                  "items": "data/raw/mine/items.csv", "items_text": ["title", "description"]}
    params["run"].update(datasets=["mine"], seeds=[1], models_cf=["mf"], models_mm=[], models_base=[], models_sga=["base_sga"],
                         models_pst=["base_sga_pst"], models_apfi=[], models_signed=["simgr"])
    params["train"].update(max_validations=2, valid_every_steps=1, batch_size=256, device="cpu")
    # one-point studies (every `auto` of the run needs a study that searches it), SiMGR's sweeping nu over two values
    params["tune"].update(workers=1, spaces={"mf": {"train": {"lr": [0.01]}, "model": {"reg": [1e-4]}},
                                             "simgr": {"train": {"lr": [0.01]}, "model": {"reg": [1e-4], "beta_cl": [0.01], "lambda_s": [0.1]}}},
                          sweeps={"simgr": {"pst": {"nu": [0.5, 0.9]}, "apfi": {"xi": [0.1], "zeta_pos": [0.4], "zeta_neg": [0.1]}}})
    params["report"]["ablation"] = ["base_sga", "base_sga_pst"]
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return params


def _run(args: list[str], cwd: Path) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "SIMGR_PROGRESS": "0",
           "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    out = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    assert out.returncode == 0, f"{' '.join(args)}:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out.stdout + out.stderr


@pytest.mark.slow
def test_setting_a_swept_value_rebuilds_the_graph_and_its_readers_at_that_value_and_no_study(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    _project(root)
    dvc = [sys.executable, "-m", "dvc"]
    _run(["git", "init", "-q"], root)
    _run([*dvc, "init", "-q"], root)
    _run([*dvc, "config", "core.analytics", "false"], root)
    out = _run([sys.executable, "-m", "stages.cli", "run-all", "--jobs", "2"], root)  # what `make run` runs
    assert "mine: reports/mine.md written" in out and (root / "reports" / "mine.md").exists()
    assert "Data and pipelines are up to date" in _run([*dvc, "status"], root)  # the state of a plain dvc repro
    _run(["git", "add", "-A"], root)
    _run(["git", "commit", "-qm", "tuned and trained"], root)
    before = json.loads((root / "data" / "mine" / "graph" / "graph.json").read_text())
    assert before["sources"]["pst.nu"] == "selected on validation"
    inputs = {p.name: p.read_bytes() for p in (root / "tuning" / "inputs").glob("*.json")}

    out = _run([*dvc, "exp", "run", "-S", "pst.nu=0.8"], root)
    ran = set(re.findall(r"Running stage '([^']+)'", out))
    assert ran == {"check", "graph@mine", "train_pst@mine-base_sga_pst-1", "train_signed@mine-simgr-1", "evaluate@mine",
                   "report@mine"}, out
    after = json.loads((root / "data" / "mine" / "graph" / "graph.json").read_text())
    assert after["settings"]["pst.nu"] == 0.8 and after["sources"]["pst.nu"] == "params.yaml"
    assert {p.name: p.read_bytes() for p in (root / "tuning" / "inputs").glob("*.json")} == inputs  # what the studies read
    history = json.loads((root / "models" / "mine" / "simgr-1" / "history.json").read_text())
    assert history["setup"]["sources"]["models.simgr.reg"] == "selected on validation"  # the other auto values: the study's
    assert "0.8" in (root / "reports" / "mine.md").read_text().split("## Values the runs used")[1]
    assert "Data and pipelines are up to date" in _run([*dvc, "status"], root)
