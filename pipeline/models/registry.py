"""Model names -> classes: every :class:`~pipeline.models.base.Recommender` subclass with a ``name``
in a module of this package is a model (its module is its registry entry; nothing else lists it).

The modules are imported on the first lookup (the settings layer never imports them).
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from pipeline.errors import UserError
from pipeline.models.base import Recommender
from pipeline.settings.types import closest

#: modules of this package that hold shared parts, not models
HELPERS = frozenset({"base", "registry", "losses", "modality", "sga", "negatives", "fingerprint"})


@cache
def model_classes() -> dict[str, type[Recommender]]:
    """name -> class of every model module in ``pipeline/models/`` (sorted by name)."""
    import pipeline.models as package

    found: dict[str, type[Recommender]] = {}
    for info in pkgutil.iter_modules(package.__path__):
        if info.name in HELPERS:
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, Recommender) and obj.__module__ == module.__name__ and obj.name:
                if obj.name in found:
                    raise RuntimeError(f"two models named {obj.name!r}: {found[obj.name].__module__} and {module.__name__}")
                found[obj.name] = obj
    return dict(sorted(found.items()))


def model_class(kind: str) -> type[Recommender]:
    classes = model_classes()
    if kind not in classes:
        hint = closest(kind, classes)
        raise UserError(f"unknown model {kind!r}" + (f" (did you mean {hint!r}?)" if hint else "") + f" (models: {', '.join(classes)})")
    return classes[kind]
