"""DVC's command line, as the tests call it: ``dvc(cwd, *args)`` -> its stdout (a failure raises)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def dvc(cwd: Path, *args: str) -> str:
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout
