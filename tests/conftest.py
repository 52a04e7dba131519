"""Shared pytest setup.

- The test helpers (``model_mixin``, ``planted``) import both as ``from model_mixin import ...``
  and ``from tests.model_mixin import ...``.
- torch runs single-threaded: the tests' tensors are tiny, and on a busy 2-core machine OpenMP
  synchronisation makes each small op ~10x slower with 2 threads.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

TESTS = Path(__file__).resolve().parent
for path in (TESTS, TESTS.parent):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))


@pytest.fixture(scope="session")
def planted():
    """The planted-cluster TrainData of tests/planted.py (read-only, shared)."""
    from planted import planted_data

    return planted_data()
