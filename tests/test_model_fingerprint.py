"""tuning/code/<model>.json (pipeline/models/fingerprint.py): the files of pipeline/models a model runs.

A hand-made package checks the import walk (absolute, inside a function, ``from package import
module``, relative); importing each model module in a fresh interpreter checks the walk against
what Python really loads; editing one file of a copy of the package changes the fingerprints of
exactly the models that run it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from pipeline.models.fingerprint import ALWAYS, closure, fingerprint, module_path, package_imports
from pipeline.models.registry import model_classes

ROOT = Path(__file__).resolve().parents[1]


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_closure_follows_every_kind_of_import_and_nothing_else(tmp_path):
    _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "import os\n\ndef f():\n    import pkg.b\n",  # inside a function
        "pkg/b.py": "from pkg import c, CONSTANT\n",  # a module of the package, and a name that is none
        "pkg/c.py": "from . import e\nfrom .sub.g import x\n",  # relative
        "pkg/d.py": "import pkg.a\n",  # imports a, not imported by it
        "pkg/e.py": "from pkg.c import y\n",  # a cycle back to c
        "pkg/sub/__init__.py": "from .. import e\n",
        "pkg/sub/g.py": "x = 1\n",
        "other/h.py": "",
    })
    assert package_imports("pkg.b", tmp_path, "pkg") == {"pkg", "pkg.c"}
    assert package_imports("pkg.sub", tmp_path, "pkg") == {"pkg", "pkg.e"}
    assert closure("pkg.a", tmp_path, "pkg") == ["pkg", "pkg.a", "pkg.b", "pkg.c", "pkg.e", "pkg.sub.g"]
    assert closure("pkg.d", tmp_path, "pkg") == ["pkg", "pkg.a", "pkg.b", "pkg.c", "pkg.d", "pkg.e", "pkg.sub.g"]
    assert module_path("pkg.sub", tmp_path) == tmp_path / "pkg" / "sub" / "__init__.py"


def test_closure_is_what_importing_each_model_module_loads():
    modules = sorted({cls.__module__ for cls in model_classes().values()})
    script = ("import importlib, sys; importlib.import_module(sys.argv[1]); "
              "print(' '.join(sorted(m for m in sys.modules if m == 'pipeline.models' or m.startswith('pipeline.models.'))))")
    procs = {m: subprocess.Popen([sys.executable, "-c", script, m], cwd=ROOT, stdout=subprocess.PIPE, text=True) for m in modules}
    for module, proc in procs.items():
        loaded = proc.communicate()[0].split()
        assert proc.returncode == 0
        assert sorted(set(closure(module, ROOT)) | {"pipeline.models"}) == loaded, module


def test_a_change_reaches_exactly_the_models_that_run_the_changed_file(tmp_path):
    shutil.copytree(ROOT / "pipeline" / "models", tmp_path / "pipeline" / "models", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "pipeline" / "__init__.py").write_text("")
    models = {name: cls.__module__ for name, cls in model_classes().items()}

    def prints() -> dict[str, str]:
        return {name: json.dumps(fingerprint(name, module, tmp_path)) for name, module in models.items()}

    before = prints()
    assert json.loads(before["simgr"])["files"].keys() == {
        "pipeline/models/__init__.py", "pipeline/models/base.py", "pipeline/models/losses.py", "pipeline/models/modality.py",
        "pipeline/models/registry.py", "pipeline/models/sga.py", "pipeline/models/simgr.py"}
    for edited, reached in (("lgmrec.py", {"lgmrec"}), ("sga.py", {"simgr"}), ("negatives.py", {"siren", "lsgrec"}),
                            ("losses.py", set(models) - {"siren", "lsgrec"}),
                            ("registry.py", set(models))):
        path = tmp_path / "pipeline" / "models" / edited
        path.write_text(path.read_text() + "\n# edited\n")
        after = prints()
        assert {name for name in models if after[name] != before[name]} == reached, edited
        before = after
    assert {module_path(m, ROOT).relative_to(ROOT).as_posix() for m in ALWAYS} <= json.loads(before["mf"])["files"].keys()
