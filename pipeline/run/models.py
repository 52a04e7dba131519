"""A params.yaml model entry as its model sees it, and where each of its values comes from.

``models.<name>`` holds the model's own keys (checked against the ``Params`` schema its class
declares), ``variant_of`` (the entry is that model with some keys overridden) and ``train``
overrides. Any value may be ``auto``: chosen on validation by the study that owns the entry
(its own, or the one ``tune.inherit`` names). :func:`resolve_values` turns the written values into
the values a run uses and says where each came from:

* a value written in params.yaml runs as written (the study's choice for that key, if any, is not used);
* ``auto``: the owner's selection (``tuning/<ds>/<owner>/selected.json``) when ``tune.enabled``;
  the schema's default when tuning is off, when the key cannot change the model here (an inert
  key), and inside a study for a key it does not search (the study's starting point);
* a key left out of the entry: the schema's default.

The same rule covers the signed graph's ``pst`` / ``apfi`` keys (SiMGR's study selects them) and a
model's ``train`` overrides (``lr`` / ``batch_size``; without one, the ``train`` section's value).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any, Mapping

from pydantic import BaseModel, ValidationError, create_model

from pipeline.errors import UserError
from pipeline.graph.signed import GraphSettings
from pipeline.models.base import ModelParams, Recommender
from pipeline.models.registry import model_class, model_classes
from pipeline.settings.messages import one_line
from pipeline.settings.models import TrainOverrides
from pipeline.settings.sections import APFI, PST, Params
from pipeline.settings.types import auto_or, closest, is_auto

#: where a value came from (history.json, the report)
WRITTEN, SELECTED, DEFAULT = "params.yaml", "selected on validation", "default"
#: how a value is written in a study's inputs when the study searches the key
SEARCHED = "searched by the study"


@cache
def written_schema(cls: type[Recommender]) -> type[BaseModel]:
    """``cls.Params`` with ``auto`` allowed for every key (what an entry of params.yaml may hold)."""
    fields = {name: (auto_or(f.rebuild_annotation(), f.description), f.default) for name, f in cls.Params.model_fields.items()}
    return create_model(f"{cls.Params.__qualname__.replace('.', '')}Written", __base__=cls.Params, **fields)  # type: ignore[call-overload]


@dataclass(frozen=True)
class ModelEntry:
    """One ``models.<name>`` entry resolved through ``variant_of``: the class and the values as written."""

    name: str
    cls: type[Recommender]
    values: dict[str, Any]  # every key of cls.Params: the written value (maybe "auto"), else the default
    written: frozenset[str]  # the keys params.yaml writes (the others are defaults)
    train: dict[str, Any]  # the train overrides (lr / batch_size), maybe "auto"

    @property
    def kind(self) -> str:
        return self.cls.name

    def defaults(self) -> ModelParams:
        """The hyper-parameters with every ``auto`` at its default (what decides the inputs, inert keys, ...)."""
        return self.cls.Params(**{k: self.cls.Params.model_fields[k].default if is_auto(v) else v for k, v in self.values.items()})

    def reads(self) -> frozenset[str]:
        return self.cls.reads(self.defaults())

    def auto_keys(self) -> list[str]:
        """Dotted params keys of this entry written ``auto`` (``models.<name>.<key>``, ``train.<key>``)."""
        return ([f"models.{self.name}.{k}" for k, v in self.values.items() if is_auto(v)]
                + [f"train.{k}" for k, v in self.train.items() if is_auto(v)])


def model_entry(params: Params, name: str) -> ModelEntry:
    """``models.<name>`` followed through ``variant_of`` and checked against its class's schema."""
    entries = params.models or {}
    if name not in entries:
        hint = closest(name, entries)
        raise UserError(f"params.yaml: models has no entry {name!r}" + (f" (did you mean {hint!r}?)" if hint else "")
                        + f" (entries: {', '.join(entries) or 'none'})")
    entry = entries[name]
    own, train = entry.own(), (entry.train.model_dump(exclude_none=True) if entry.train else {})
    kind = name
    if entry.variant_of is not None:
        kind = entry.variant_of
        parent = entries.get(kind)
        if parent is None:
            raise UserError(f"params.yaml: models.{name}.variant_of: {kind!r} has no entry in models (a variant overrides its parent's keys)")
        if parent.variant_of is not None:
            raise UserError(f"params.yaml: models.{name}.variant_of: {kind!r} is itself a variant (of {parent.variant_of!r}); "
                            "name the model it varies")
        own = {**parent.own(), **own}
        train = {**(parent.train.model_dump(exclude_none=True) if parent.train else {}), **train}
    classes = model_classes()
    if kind not in classes:
        hint = closest(kind, classes)
        mean = f" (did you mean {hint!r}?)" if hint else ""
        if entry.variant_of is not None:
            raise UserError(f"params.yaml: models.{name}.variant_of: {kind!r} is not a model{mean} (models: {', '.join(classes)})")
        raise UserError(f"params.yaml: models.{name}: not a model name{mean}; another entry is a variant and needs "
                        f"'variant_of: <model>' (models: {', '.join(classes)})")
    cls = model_class(kind)
    schema = written_schema(cls)
    try:
        checked = schema.model_validate(own)
    except ValidationError as exc:
        raise UserError(one_line(exc.errors(), schema, lambda key: f"params.yaml: models.{name}" + (f".{key}" if key else ""))) from None
    return ModelEntry(name, cls, dict(checked), frozenset(own), train)


@dataclass(frozen=True)
class Resolved:
    """The values a run uses and where each came from (dotted params key -> source)."""

    values: dict[str, Any]
    sources: dict[str, str] = field(default_factory=dict)


def _pick(key: str, written: Any, default: Any, *, candidates: Mapping[str, Any] | None, selection: Mapping[str, Any] | None,
          tuned: bool, inert: bool, owner_key: str, searched: frozenset[str] = frozenset()) -> tuple[Any, str]:
    """The value of one key: a study's candidate, the written value, or for ``auto`` the selection / the default.
    In a study (``candidates`` given), a key it searches or sweeps but has not reached yet is at its default."""
    if candidates is not None and owner_key in candidates:
        return candidates[owner_key], SEARCHED
    if candidates is not None and owner_key in searched:
        return default, DEFAULT
    if written is None:
        return default, DEFAULT
    if not is_auto(written):
        return written, WRITTEN
    if candidates is not None or not tuned or inert:
        return default, DEFAULT
    if selection is None or owner_key not in selection:
        raise UserError(f"params.yaml: {key} is auto, but the study's selection has no {owner_key} (is it in its tune.spaces / "
                        "tune.sweeps? give it a value, or re-run the study)")
    return selection[owner_key], SELECTED


def resolve_values(entry: ModelEntry, owner: str, *, selection: Mapping[str, Any] | None = None,
                   candidates: Mapping[str, Any] | None = None, searched: frozenset[str] = frozenset(), tuned: bool = True,
                   modalities: tuple[str, ...] = ()) -> tuple[ModelParams, dict[str, Any], dict[str, str]]:
    """(hyper-parameters, train overrides, sources) of a run of ``entry``.

    ``selection``: the owner study's selected values (dotted keys, ``models.<owner>.<key>``,
    ``train.lr``); ``candidates``: a study trial's values, ``searched``: every key its study searches
    or sweeps (a trial runs those at its candidates or their defaults, and every unsearched ``auto``
    at its default: the study's starting point); ``tuned``: params ``tune.enabled``."""
    inert = entry.cls.inert_keys(entry.defaults(), modalities)
    fields = entry.cls.Params.model_fields
    values, sources = {}, {}
    for key, written in entry.values.items():
        dotted = f"models.{entry.name}.{key}"
        values[key], sources[dotted] = _pick(dotted, written, fields[key].default, candidates=candidates, selection=selection,
                                             tuned=tuned, inert=key in inert, owner_key=f"models.{owner}.{key}", searched=searched)
    train = {}
    for key in TrainOverrides.model_fields:
        dotted, written = f"models.{entry.name}.train.{key}", entry.train.get(key)
        if written is None and (candidates is None or f"train.{key}" not in candidates):
            continue  # no override: the train section's value
        value, source = _pick(dotted, written, None, candidates=candidates, selection=selection, tuned=tuned, inert=False,
                              owner_key=f"train.{key}", searched=searched)
        if value is None:  # auto at its default: no override, the train section's value
            sources[dotted] = "train section"
        else:
            train[key], sources[dotted] = value, source
    try:
        hp = entry.cls.Params(**values)
    except ValidationError as exc:
        raise UserError(one_line(exc.errors(), entry.cls.Params, lambda key: f"selected values of models.{entry.name}.{key}")) from None
    return hp, train, sources


def resolve_graph(params: Params, *, selection: Mapping[str, Any] | None = None, candidates: Mapping[str, Any] | None = None,
                  searched: frozenset[str] = frozenset(), tuned: bool | None = None) -> tuple[GraphSettings, dict[str, str]]:
    """The signed graph's settings (``pst`` / ``apfi``, every ``auto`` resolved as in :func:`resolve_values`;
    SiMGR's study selects them) and the source of each value."""
    tuned = params.tune.enabled if tuned is None else tuned
    sections, sources = {}, {}
    for name, section in (("pst", params.pst or PST()), ("apfi", params.apfi or APFI())):
        values = {}
        for key, written in section:
            dotted = f"{name}.{key}"
            values[key], sources[dotted] = _pick(dotted, written, type(section).model_fields[key].default, candidates=candidates,
                                                 selection=selection, tuned=tuned, inert=False, owner_key=dotted, searched=searched)
        sections[name] = type(section)(**values)
    return GraphSettings(sections["pst"], sections["apfi"]), sources


def owner_of(params: Params, model: str) -> str:
    """The model whose study selects ``model``'s ``auto`` values (params ``tune.inherit``, else itself)."""
    return (params.tune.inherit or {}).get(model, model) if params.tune else model
