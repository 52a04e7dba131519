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
