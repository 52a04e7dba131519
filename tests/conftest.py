"""Shared pytest setup.

- The test helpers (``model_mixin``, ``planted``) import both as ``from model_mixin import ...``
  and ``from tests.model_mixin import ...``.
- torch runs single-threaded: the tests' tensors are tiny, and on a busy 2-core machine OpenMP
  synchronisation makes each small op ~10x slower with 2 threads.
- ``DEVICES``: the torch devices of this machine, ``cpu`` always and ``cuda`` when
  ``torch.cuda.is_available()`` (implicit's ``HAS_CUDA`` pattern). A test that takes the
  ``device`` fixture runs once per device, with the device in its id (``test_x[cuda]``), so one
  ``pytest`` on a GPU machine runs the CUDA path too and ``pytest -k cuda`` runs only that.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

TESTS = Path(__file__).resolve().parent
for path in (TESTS, TESTS.parent):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))


@pytest.fixture(scope="session")
def planted():
    """The planted-cluster TrainData of tests/planted.py (read-only, shared)."""
    from planted import planted_data

    return planted_data()


@pytest.fixture(params=DEVICES)
def device(request) -> str:
    """Each torch device of this machine in turn (``DEVICES``)."""
    return request.param


def shipped_params(**sections) -> dict:
    """The repository's params.yaml as a mapping, with whole ``sections`` replaced and, for
    ``section__key=value`` arguments, single keys set (a stage reads a complete params file)."""
    import copy

    import yaml

    params = copy.deepcopy(yaml.safe_load((TESTS.parent / "params.yaml").read_text()))
    for name, value in sections.items():
        if "__" in name:
            section, key = name.split("__", 1)
            params.setdefault(section, {})[key] = value
        else:
            params[name] = value
    return params


def simgr(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """Run the `simgr` entry point as a shell would: (exit status, stdout, stderr)."""
    from stages.cli import main

    monkeypatch.setattr(sys, "argv", ["simgr", *args])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err
