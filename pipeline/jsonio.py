"""Small JSON files written the same way everywhere: stable bytes for DVC, NaN/inf as null."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from pipeline.atomic import atomic_file
from pipeline.errors import UserError


def _clean(obj: Any) -> Any:
    if isinstance(obj, float):
        return None if math.isnan(obj) or math.isinf(obj) else obj
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy / torch scalars
        return _clean(obj.item())
    return obj


def write_json(obj: Any, path: str | Path) -> Path:
    """Write ``obj`` as indented JSON with a trailing newline (stable bytes for DVC), atomically."""
    path = Path(path)
    text = json.dumps(_clean(obj), indent=2, sort_keys=False) + "\n"
    with atomic_file(path) as tmp:
        tmp.write_text(text)
    return path


def read_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: file not found")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None
