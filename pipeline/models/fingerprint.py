"""Which files of this package a model runs, so that a change re-trains only the models it touches.

A study or training stage of model ``m`` depends on ``tuning/code/<m>.json`` (written by the check
stage) instead of on the whole ``pipeline/models`` folder: the md5 of every module of this package
that ``m``'s class executes -- its own module and the package modules it imports, transitively
(the registry too: it is how a name finds its class). Editing ``lgmrec.py`` then changes LGMRec's
file alone and DVC re-runs LGMRec's stages, not every model's; editing ``losses.py`` changes the
file of every model importing it. Code outside this package is listed in dvc.yaml as before.

The imports are read from the source (:mod:`ast`, every ``import`` / ``from ... import`` statement,
also those inside functions), not from a running interpreter; ``tests/test_model_fingerprint.py``
checks them against what importing each model module really loads.
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path
from typing import Any

PACKAGE = "pipeline.models"
CODE_DIR = Path("tuning") / "code"
#: modules of every model's file: the package marker and the name -> class lookup
ALWAYS = ("pipeline.models", "pipeline.models.registry")
#: the folder holding the ``pipeline`` package (the project root): file names are relative to it
SOURCE_ROOT = Path(__file__).resolve().parents[2]


def code_file(model: str) -> Path:
    return CODE_DIR / f"{model}.json"


def module_path(module: str, root: Path) -> Path:
    """The source file of ``module`` (a package: its ``__init__.py``) under ``root``."""
    base = root.joinpath(*module.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def package_imports(module: str, root: Path, package: str = PACKAGE) -> set[str]:
    """The modules of ``package`` that ``module``'s source imports (``from package import x`` counts
    ``package.x`` when that is a module of the package, else the package itself)."""
    path = module_path(module, root)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.ImportFrom):  # relative: resolved against this module's package
            parent = module if path.name == "__init__.py" else module.rpartition(".")[0]
            for _ in range(node.level - 1):
                parent = parent.rpartition(".")[0]
            base = f"{parent}.{node.module}" if node.module else parent
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if (name == package or name.startswith(package + ".")) and module_path(name, root).is_file():
                found.add(name)
    return found


def closure(module: str, root: Path, package: str = PACKAGE) -> list[str]:
    """``module`` and every module of ``package`` it imports, transitively (sorted)."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(package_imports(name, root, package) - seen)
    return sorted(seen)


def fingerprint(model: str, module: str, root: Path = SOURCE_ROOT) -> dict[str, Any]:
    """``tuning/code/<model>.json``: the model, its class's module and the md5 of each file it runs."""
    modules = sorted(set(closure(module, root)) | set(ALWAYS))
    paths = [module_path(m, root) for m in modules]
    files = {p.relative_to(root).as_posix(): hashlib.md5(p.read_bytes()).hexdigest() for p in paths}
    return {"model": model, "module": module, "files": dict(sorted(files.items()))}
