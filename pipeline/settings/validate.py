"""Validating a params mapping: the schema (:class:`~pipeline.settings.sections.Params`), then the
references between sections (a run names datasets and models that exist, a variant's parent
exists, APFI's Q fits the candidate lists, ...). Every problem is one :class:`UserError` line.

Two depths: ``complete=False`` (what every stage does when it loads params.yaml) checks what is
there and lets keys be absent -- a stage asks for what it needs and names a missing key itself;
``complete=True`` (``simgr check``, the ``check`` stage) also asks for every required section and
key.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable, Iterator

from pydantic import BaseModel, ValidationError

from pipeline.errors import UserError
from pipeline.settings.messages import one_line
from pipeline.settings.sections import REQUIRED, Params, Run
from pipeline.settings.types import closest

#: metrics the report always reads (pipeline.report.benchmark.ABLATION_METRICS)
REPORT_METRICS = ("recall@20", "ndcg@20")
#: the run lists of the training groups (what each group reads: pipeline.run.groups)
RUN_MODELS = tuple(key for key in Run.model_fields if key.startswith("models_"))

Problem = tuple[str, str]


def _section(params: dict[str, Any], name: str) -> dict[str, Any]:
    value = params.get(name)
    return value if isinstance(value, dict) else {}


def _not_in(key: str, names: list[Any], known: dict[str, Any], what: str) -> Iterator[Problem]:
    for j, name in enumerate(names):
        if name not in known:
            hint = closest(name, known)
            yield f"{key}[{j}]", (f"{name!r} is not an entry of {what}" + (f" (did you mean {hint!r}?)" if hint else
                                  f" (entries: {', '.join(map(str, known)) or 'none'})"))


def _references(params: dict[str, Any]) -> Iterator[Problem]:
    run, datasets, models = _section(params, "run"), params.get("datasets"), params.get("models")
    report, repro = _section(params, "report"), _section(params, "repro")
    if isinstance(datasets, dict):
        yield from _not_in("run.datasets", run.get("datasets") or [], datasets, "datasets")
        yield from _not_in("repro.full", repro.get("full") or [], datasets, "datasets")
    if isinstance(models, dict):
        for key in RUN_MODELS:
            yield from _not_in(f"run.{key}", run.get(key) or [], models, "models")
        if "proposed" in report:
            yield from (("report.proposed", p) for _, p in _not_in("report.proposed", [report["proposed"]], models, "models"))
        yield from _not_in("report.ablation", report.get("ablation") or [], models, "models")
        for name, entry in models.items():
            parent = (entry or {}).get("variant_of")
            if parent is not None and parent not in models:
                yield f"models.{name}.variant_of", f"{parent!r} has no entry in models (a variant overrides its parent's keys)"


def _duplicates(params: dict[str, Any]) -> Iterator[Problem]:
    run = _section(params, "run")
    for key in ("datasets", "seeds"):
        repeated = [v for v, n in Counter(run.get(key) or []).items() if n > 1]
        if repeated:
            yield f"run.{key}", f"{repeated[0]!r} is listed twice (each run has one output folder)"
    groups = Counter(m for key in RUN_MODELS for m in run.get(key) or [])
    repeated = [m for m, n in groups.items() if n > 1]
    if repeated:
        yield "run", f"model {repeated[0]!r} is listed twice in the run.models_* groups (one training stage per run)"


def _graph(params: dict[str, Any]) -> Iterator[Problem]:
    apfi, neighbors = _section(params, "apfi"), _section(params, "neighbors")
    q = apfi.get("q")
    if apfi.get("enabled", True) and isinstance(q, int) and "candidates" in neighbors and neighbors["candidates"] < q:
        yield "neighbors.candidates", (f"{neighbors['candidates']} is below apfi.q = {apfi['q']} "
                                       "(APFI picks Q items from each candidate list; use at least Q plus some slack)")
    ingest = _section(params, "ingest")
    low, high = ingest.get("rating_min", 1.0), ingest.get("rating_max", 5.0)
    if low > high:
        yield "ingest.rating_min", f"{low} is above ingest.rating_max = {high}"


def _metrics(params: dict[str, Any]) -> Iterator[Problem]:
    topk, report = _section(params, "evaluate").get("topk"), _section(params, "report")
    if not topk or "metrics" not in report:
        return
    for metric in [*report["metrics"], *REPORT_METRICS]:
        if int(metric.split("@")[1]) not in topk:
            yield "evaluate.topk", f"{topk} lacks k = {metric.split('@')[1]}, which the report needs ({metric})"
            return


def _synthetic(params: dict[str, Any]) -> Iterator[Problem]:
    synth = _section(params, "synth")
    for name, entry in (params.get("datasets") or {}).items():
        dim = entry.get("image_dim")
        if entry.get("source") == "synthetic" and dim is not None and dim != synth.get("image_dim", 4096):
            yield f"datasets.{name}.image_dim", f"{dim} differs from synth.image_dim = {synth.get('image_dim', 4096)} (the generated files)"


def _item_features(params: dict[str, Any]) -> Iterator[Problem]:
    """An item table gives item text only through named text columns."""
    for name, entry in (params.get("datasets") or {}).items():
        if entry.get("items") and not (entry.get("items_text") or entry.get("items_flags_as_categories")):
            yield f"datasets.{name}.items", "an item table without items_text (or items_flags_as_categories) gives no item text"


def _studies(params: dict[str, Any]) -> Iterator[Problem]:
    """Every model with its own study (dvc.yaml tune_cf / tune_mm / tune_simgr) has a search space entry
    (the study reads tune.spaces.<model>; {} means no search); an inheriting model names a study."""
    run, tune, models = _section(params, "run"), _section(params, "tune"), params.get("models")
    if not tune:
        return
    spaces = tune.get("spaces") or {}
    for key in ("models_cf", "models_mm", "models_base"):
        for name in run.get(key) or []:
            if name not in spaces:
                yield f"tune.spaces.{name}", f"missing: {name!r} in run.{key} has a study (give it a search space, or {{}} for none)"
    if "simgr" not in spaces:
        yield "tune.spaces.simgr", "missing: SiMGR's study runs for every dataset (the graph stage reads its selection); {} for none"
    for name in spaces:
        if isinstance(models, dict) and name not in models:
            yield f"tune.spaces.{name}", f"{name!r} has no entry in models"
    for name, owner in (tune.get("inherit") or {}).items():
        if owner not in spaces:
            yield f"tune.inherit.{name}", f"{owner!r} has no study (no tune.spaces.{owner})"


CHECKS: tuple[Callable[[dict[str, Any]], Iterator[Problem]], ...] = (
    _references, _duplicates, _studies, _graph, _metrics, _synthetic, _item_features,
)


def validate_params(params: dict[str, Any], source: str = "params.yaml", *, complete: bool = False) -> Params | None:
    """The typed :class:`Params` of ``params`` (the parsed file), or a one-line :class:`UserError` at its
    first problem (None for a partial mapping, ``complete=False``, that lacks required keys). The models' own keys
    are checked by :mod:`pipeline.run.models` (above the models)."""
    try:
        typed = Params.model_validate(params)
    except ValidationError as exc:
        errors = [e for e in exc.errors() if complete or e["type"] != "missing"]
        if errors:
            raise UserError(one_line(errors, Params, lambda key: f"{source}: {key}")) from None
        typed = None  # a partial mapping (complete=False): checked, but not a whole Params
    if complete:
        missing = [name for name in REQUIRED if name not in params]
        if missing:
            raise UserError(f"{source}: missing section(s) {', '.join(missing)} (expected sections: {', '.join(REQUIRED)})")
    for check in CHECKS:
        for key, what in check(params):
            raise UserError(f"{source}: {key}: {what}")
    return typed


def validate_section(schema: type[BaseModel], values: dict[str, Any], label: Callable[[str], str]) -> None:
    """One section (or any mapping) against its schema; errors name keys through ``label``
    (``ingest.kcore`` for params.yaml, ``--kcore`` for a command-line flag)."""
    try:
        schema.model_validate(values)
    except ValidationError as exc:
        raise UserError(one_line(exc.errors(), schema, label)) from None


def summary(params: Params | dict[str, Any], source: str = "params.yaml") -> str:
    """What ``simgr check`` prints for valid params (the typed object or the parsed mapping)."""
    if isinstance(params, Params):
        sections = sum(getattr(params, name) is not None for name in Params.model_fields)
        datasets, models = params.datasets or {}, params.models or {}
    else:
        sections, datasets, models = len(params), params.get("datasets") or {}, params.get("models") or {}
    return f"{source}: valid ({sections} sections, {len(datasets)} datasets, {len(models)} models)"
