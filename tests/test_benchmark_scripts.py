"""The benchmark scripts import against the current library (they are not run by the suite: they time things)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from pipeline.models.registry import model_classes

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(autouse=True)
def _on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))


@pytest.mark.parametrize("name", sorted(p.stem for p in BENCH.glob("*.py")))
def test_every_benchmark_script_imports(name):
    module = importlib.import_module(name)
    assert callable(getattr(module, "main", None)) or name in {"steps", "summary"}, f"benchmarks/{name}.py has no main()"
    sys.modules.pop(name, None)


def test_the_epoch_benchmark_times_every_registered_model():
    import run

    assert run.default_models() == list(model_classes()) and {"mgcn", "bm3", "lsgrec", "simgr"} <= set(run.default_models())


def test_pruning_check_against_a_directory_of_the_same_studies_finds_no_gap(tmp_path):
    """A study compared with a copy of itself (``--base-dir``): same selection, zero gap, nothing saved."""
    import shutil

    import pruning_check

    for model in ("mf", "bm3"):
        shutil.copytree(pruning_check.ROOT / "tuning" / "magazine" / model, tmp_path / model)
    base = pruning_check.Base(None, tmp_path)
    for model in ("mf", "bm3"):
        row = pruning_check.compare("magazine", model, base)
        assert row["comparable"] and row["same_selection"], row
        assert row["gap_in_std"] == 0.0 and row["saved"] == 0.0, row
        assert row["epochs_pruned"] == row["epochs_unpruned"] > 0
    assert pruning_check.compare("magazine", "lightgcn", base) is None  # not in the directory: not compared
    assert "re-run unpruned" in pruning_check.markdown("magazine", base, [row])
