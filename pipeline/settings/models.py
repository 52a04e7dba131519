"""``models.<name>``: one entry per model of params.yaml, as the settings layer sees it.

Each model declares its own keys, their types and defaults next to its class
(``pipeline/models/<model>.py``: the nested ``Params`` schema); the settings layer sits below the
models and does not import them, so here an entry is checked only for what every entry has: an
optional ``variant_of`` (the entry is that model with some of its keys overridden: the ablations
``base``, ``base_sga``, ...) and optional ``train`` overrides (a baseline run as its authors run
it). The model's own keys are checked against its schema by :mod:`pipeline.run.models`
(``simgr check``, the ``check`` stage, and every run's set-up).
"""

from __future__ import annotations

from typing import Optional

from pydantic import ConfigDict

from pipeline.settings.types import Name, PositiveFloat, PositiveInt, Section, auto_or


class TrainOverrides(Section):
    """``models.<name>.train``: the ``train`` keys a model runs with instead (its authors' setup, or
    ``lr: auto``: the learning rate its study selects)."""

    lr: Optional[auto_or(PositiveFloat)] = None  # type: ignore[valid-type]
    batch_size: Optional[auto_or(PositiveInt)] = None  # type: ignore[valid-type]


class ModelEntry(Section):
    """A model entry: ``variant_of``, ``train`` and the model's own keys (kept as written)."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True)

    variant_of: Optional[Name] = None
    train: Optional[TrainOverrides] = None

    def own(self) -> dict:
        """The model's own keys of this entry (not ``variant_of`` / ``train``), as written."""
        return dict(self.__pydantic_extra__ or {})
