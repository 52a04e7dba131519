"""The `simgr` command line. Subcommands mirror the DVC stages, for use outside DVC.

Stage-mirroring commands (`simgr features magazine`) run exactly what `dvc repro` runs for that
stage, with the parameters in ``params.yaml`` (`simgr ingest <dataset>` too). `simgr ingest --reviews
... --out ...`, `simgr synth`, `simgr recommend` and `simgr export` work on a user's own files or on
the pipeline's outputs, outside DVC. A ``UserError``, an ``OSError`` on a path and a bad option or
argument are printed as one line (no traceback) with exit status 2.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Optional

import typer

from pipeline.errors import UserError, os_error_line
from pipeline.settings.sections import Ingest

app = typer.Typer(
    name="simgr",
    help="Sign-aware multimodal recommendation: ingest, features, neighbors, tune, graph, train, evaluate, report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _stage(name: str, *args: str) -> None:
    importlib.import_module(f"stages.{name}").main(*args)


@app.command()
def check(params: str = typer.Option("params.yaml", "--params", help="the params file to validate")) -> None:
    """Validate params.yaml (every section, as the first DVC stage does): prints a summary or the first problem."""
    from stages.check import check as run_check

    typer.echo(run_check(params)[1])


@app.command()
def download(dataset: str = typer.Argument(..., help="dataset name from params.yaml 'datasets'")) -> None:
    """Verify shipped raw files, generate the synthetic set, or fetch the paper's files."""
    _stage("download", dataset)


@app.command()
def features(dataset: str = typer.Argument(..., help="dataset name from params.yaml 'datasets'")) -> None:
    """Extract item text / image feature matrices (stage `features`)."""
    _stage("features", dataset)


@app.command()
def neighbors(dataset: str = typer.Argument(..., help="dataset name from params.yaml 'datasets'")) -> None:
    """FAISS item kNN lists per modality (stage `neighbors`)."""
    _stage("neighbors", dataset)


@app.command()
def graph(dataset: str = typer.Argument(..., help="dataset name from params.yaml 'datasets'")) -> None:
    """APFI candidates, personalised thresholds and pseudo edges at SiMGR's selected values (stage `graph`)."""
    _stage("graph", dataset)


@app.command()
def tune(
    dataset: str = typer.Argument(..., help="dataset name"),
    model: str = typer.Argument(..., help="model name from params.yaml 'models' (its space: tune.spaces.<model>)"),
    resume: bool = typer.Option(False, "--resume", help="continue the study in its storage instead of starting afresh"),
) -> None:
    """Select a model's hyper-parameters on validation (stage `tune_*`): tuning/<dataset>/<model>/."""
    _stage("tune", dataset, model, *(["--resume"] if resume else []))


@app.command()
def train(
    dataset: str = typer.Argument(..., help="dataset name"),
    model: str = typer.Argument(..., help="model name from params.yaml 'models'"),
    seed: int = typer.Argument(1, help="random seed"),
    resume: bool = typer.Option(False, "--resume", help="continue an interrupted run from its checkpoint"),
) -> None:
    """Train one model (stage `train_*`)."""
    _stage("train", dataset, model, str(seed), *(["--resume"] if resume else []))


@app.command()
def evaluate(
    dataset: str = typer.Argument(..., help="dataset name"),
    runs: Optional[str] = typer.Option(None, "--runs", help="only these runs, comma-separated model-seed (e.g. simgr-1,mf-2)"),
) -> None:
    """Full-ranking evaluation of every trained run of a dataset (stage `evaluate`)."""
    _stage("evaluate", dataset, *(["--runs", runs] if runs else []))


@app.command()
def report(dataset: str = typer.Argument(..., help="dataset name")) -> None:
    """Benchmark report in the shape of the paper's Table 2 (stage `report`)."""
    _stage("report", dataset)


@app.command("train-all")
def train_all(
    jobs: int = typer.Option(2, "--jobs", help="training runs side by side (each with train.threads threads)"),
) -> None:
    """Run the stale training stages N at a time, then record them in dvc.lock (dvc commit); `dvc repro` does the rest."""
    from pipeline.repro.parallel import train_all as run

    run(".", jobs)


@app.command("run-all")
def run_all(
    jobs: int = typer.Option(2, "--jobs", help="training runs side by side (each with train.threads threads)"),
) -> None:
    """The whole pipeline dataset by dataset, smallest first (what `make run` runs): one progress line, a report per dataset as it is done."""
    from pipeline.repro.runall import run_all as run

    run(".", jobs)


@app.command("repro-check")
def repro_check(
    keep: bool = typer.Option(False, "--keep", help="keep the temporary clone (its path is printed)"),
    workdir: Optional[str] = typer.Option(None, "--dir", help="clone into this folder instead of a temporary one"),
    budget: Optional[float] = typer.Option(None, "--budget-minutes", help="start no training run, and stop those running, this "
                                           "many minutes after the check began; sampled runs left out are trusted and listed"),
) -> None:
    """Rebuild the committed HEAD in a clone and compare every output by the reproducibility contract."""
    _stage("repro_check", *(["--keep"] if keep else []), *(["--dir", workdir] if workdir else []),
           *(["--budget-minutes", str(budget)] if budget is not None else []))


# -- commands on a user's own files (each defined in its own section below) ------------------

SEP_NAMES = {"\\t": "\t", "tab": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
#: the defaults of `simgr ingest`'s options: the params schema's (pipeline.settings.sections.Ingest)
INGEST = {name: field.default for name, field in Ingest.model_fields.items()}


def _columns(spec: str, header: bool | None) -> dict[str, str | int]:
    """``--columns``: where user, item, rating[, timestamp] are: header names or 1-based positions."""
    parts = [p.strip() for p in spec.split(",")]
    if len(parts) not in (3, 4) or not all(parts):
        raise UserError(f"--columns: expected user,item,rating[,timestamp] (3 or 4 names or positions), got {spec!r}")
    fields = {role: int(p) if p.isdigit() else p for role, p in zip(("user", "item", "rating", "timestamp"), parts)}
    if header is False and any(isinstance(v, str) for v in fields.values()):
        raise UserError(f"--columns {spec}: a file without a header line has no column names; give 1-based positions (e.g. --columns 1,2,3,4)")
    if any(isinstance(v, int) and v < 1 for v in fields.values()):
        raise UserError(f"--columns {spec}: positions count from 1")
    return fields


@app.command()
def ingest(
    dataset: Optional[str] = typer.Argument(None, help="a dataset of params.yaml 'datasets': run its ingest stage (data/<dataset>/ingest/), as dvc repro does; or give --reviews and --out for a file of your own"),
    reviews: Optional[str] = typer.Option(None, "--reviews", help="interactions file: Amazon 2014/2018 reviews or ratings CSV, MMRec .inter, or delimited text / parquet of user, item, rating[, timestamp]"),
    out: Optional[str] = typer.Option(None, "--out", help="folder for interactions/users/items.parquet and stats.json"),
    meta: Optional[str] = typer.Option(None, "--meta", help="Amazon metadata file (meta_<Cat>.json.gz)"),
    images: Optional[str] = typer.Option(None, "--images", help="Amazon 2014 image features (.b); only counted here"),
    image_dim: int = typer.Option(4096, "--image-dim", help="floats per .b record"),
    fmt: str = typer.Option("auto", "--format", help="auto, amazon2014, amazon2018, mmrec or generic"),
    sep: Optional[str] = typer.Option(None, "--sep", help="field separator of delimited text (',', ';', '|', '\\t' or tab); detected when not given"),
    header: Optional[bool] = typer.Option(None, "--header/--no-header", help="line 1 holds column names (detected when not given)"),
    columns: Optional[str] = typer.Option(None, "--columns", help="where user,item,rating[,timestamp] are: header names or 1-based positions, e.g. userId,movieId,rating or 1,2,3,4 (detected from the header when not given)"),
    encoding: Optional[str] = typer.Option(None, "--encoding", help="text encoding of delimited text (default utf-8; e.g. latin-1, cp1252)"),
    kcore: int = typer.Option(INGEST["kcore"], "--kcore", help="k of the user/item k-core (0 or 1: none)"),
    seed: int = typer.Option(INGEST["seed"], "--seed", help="seed of the random split"),
    split: str = typer.Option(INGEST["split"], "--split", help="random (MMRec per-user rule) or temporal (global 8:1:1; needs timestamps)"),
    rating_min: float = typer.Option(INGEST["rating_min"], "--rating-min", help="lowest valid rating"),
    rating_max: float = typer.Option(INGEST["rating_max"], "--rating-max", help="highest valid rating"),
    on_error: str = typer.Option(INGEST["on_error"], "--on-error", help="raise at a malformed line, or skip and count it"),
) -> None:
    """Ingest a configured dataset (stage `ingest`), or your own files outside DVC: clean, k-core, re-index, split, write the four files."""
    from pathlib import Path

    from pipeline.ingest.dataset import ingest as run_ingest
    from pipeline.settings import validate_section

    if dataset is not None:
        if reviews is not None or out is not None:
            raise UserError(f"simgr ingest {dataset}: ingests the dataset of params.yaml into data/{dataset}/ingest/; "
                            "for a file of your own give --reviews and --out without a dataset name")
        _stage("ingest", dataset)
        return
    if reviews is None or out is None:
        raise UserError("simgr ingest: give a dataset of params.yaml (simgr ingest magazine), or --reviews FILE and --out FOLDER")
    if not out.strip() or not reviews.strip():
        raise UserError(f"{'--out' if not out.strip() else '--reviews'}: empty path")
    if image_dim < 1:
        raise UserError(f"--image-dim: expected a positive number of floats per record, got {image_dim}")
    if Path(out).exists() and not Path(out).is_dir():
        raise UserError(f"--out {out}: exists and is not a folder (the outputs are four files in a folder)")
    flag = lambda key: "--" + key.replace("_", "-")  # noqa: E731
    values = dict(kcore=kcore, rating_min=rating_min, rating_max=rating_max, split=split, seed=seed, on_error=on_error)
    validate_section(Ingest, values, flag)
    cfg = Ingest(**values)
    if cfg.rating_min > cfg.rating_max:
        raise UserError(f"--rating-min: {cfg.rating_min} is above --rating-max = {cfg.rating_max}")
    delimited = {"sep": SEP_NAMES.get(sep, sep) if sep is not None else None, "header": header,
                 "fields": _columns(columns, header) if columns is not None else None, "encoding": encoding}
    delimited = {k: v for k, v in delimited.items() if v is not None}
    if delimited and fmt == "auto":
        fmt = "generic"  # only delimited text has a separator, a header, columns and an encoding
    if delimited and fmt != "generic":
        given = ", ".join("--header/--no-header" if k == "header" else f"--{k if k != 'fields' else 'columns'}" for k in delimited)
        raise UserError(f"{given}: options of delimited text (--format generic), not of --format {fmt}")
    if "sep" in delimited and len(delimited["sep"]) != 1:
        raise UserError(f"--sep: expected one character (or tab), got {sep!r}")
    source = {"format": fmt, "reviews": reviews, "meta": meta, "images": images, "image_dim": image_dim, **delimited}
    stats = run_ingest(source, cfg, out, name=reviews, label=flag, out_flag="--out")
    with_image = stats["items"]["with_image"]
    converted = stats.get("timestamps", {}).get("converted_to_seconds", {})
    typer.echo(
        f"{out}: {stats['n_users']} users, {stats['n_items']} items, {stats['n_interactions']} interactions "
        f"({', '.join(f'{k} {v}' for k, v in stats['splits'].items())}); dropped {stats['dropped']}"
        + (f"; timestamps converted to seconds: {', '.join(f'{n} in {unit}' for unit, n in converted.items())}" if converted else "")
        + (f"; {with_image} of {stats['n_items']} items have an image vector" if with_image is not None else "")
    )


@app.command()
def synth(
    out: str = typer.Option(..., "--out", help="folder to write the raw files into"),
    users: int = typer.Option(19445, "--users", help="number of users (default: Amazon Baby's)"),
    items: int = typer.Option(7050, "--items", help="number of items"),
    interactions: int = typer.Option(160792, "--interactions", help="number of distinct (user, item) ratings"),
    clusters: int = typer.Option(16, "--clusters", help="item clusters (shared by features and user tastes)"),
    image_dim: int = typer.Option(4096, "--image-dim", help="image feature size (Amazon 2014: 4096)"),
    seed: int = typer.Option(0, "--seed", help="random seed (same seed, same bytes)"),
    category: str = typer.Option("Synthetic", "--category", help="category name used in the file names"),
) -> None:
    """Write a synthetic dataset in the Amazon 2014 format (reviews, meta, .b image features)."""
    from pathlib import Path

    from pipeline.ingest.synth import write_synthetic

    paths = write_synthetic(
        Path(out), n_users=users, n_items=items, n_interactions=interactions, n_clusters=clusters,
        image_dim=image_dim, seed=seed, category=category,
    )
    for kind, path in paths.items():
        typer.echo(f"{kind}: {path}")


def _known(dataset: str, model: str | None = None) -> None:
    """One line naming the known ones when params.yaml has no such dataset (or model). Only the names
    are read: a run already trained is used whatever else params.yaml says now."""
    from pipeline.settings import read_params_file
    from pipeline.settings.types import closest

    raw = read_params_file()
    for kind, name in (("dataset", dataset), ("model", model)):
        known = raw.get(f"{kind}s") or {}
        if name is not None and name not in known:
            hint = closest(name, list(known))
            raise UserError(f"params.yaml: unknown {kind} {name!r}" + (f" (did you mean {hint!r}?)" if hint else "")
                            + f" ({kind}s: {', '.join(map(str, known)) or 'none'})")


def _trained_run(dataset: str, model: str, seed: int, what: str):
    """The folder of a trained run, or one line: an unknown dataset or model (naming the known ones),
    a run not trained yet, a run that was skipped."""
    from pipeline.paths import model_dir
    from pipeline.skipped import skipped

    _known(dataset, model)
    run = model_dir(dataset, model, seed)
    if not run.is_dir():
        raise UserError(f"{run}: run directory not found (train it: simgr train {dataset} {model} {seed})")
    reason = skipped(run)
    if reason is not None:
        raise UserError(f"{run}: the run was skipped ({reason}), so there is nothing to {what}")
    return run


@app.command()
def recommend(
    user: str = typer.Option(..., "--user", help="the raw user id, as in the reviews file (column user_id of data/<dataset>/ingest/users.parquet)"),
    k: int = typer.Option(20, "-k", help="number of items to show"),
    dataset: str = typer.Option("magazine", "--dataset", help="dataset name"),
    model: str = typer.Option("simgr", "--model", help="model name of the trained run"),
    seed: int = typer.Option(1, "--seed", help="seed of the trained run"),
) -> None:
    """Print a user's top items (with titles) from a trained run, training items excluded."""
    from pipeline.evaluation.recommend import recommend_user
    from pipeline.paths import stage_dir

    run = _trained_run(dataset, model, seed, "recommend")
    internal, top = recommend_user(stage_dir(dataset, "ingest"), run, user, k)
    typer.echo(f"top {top.height} items for user {user} (id {internal}) of {dataset}, run {model}-{seed}; training items excluded")
    for row in top.iter_rows(named=True):
        mark = f"  [held-out {row['held_out']}]" if row["held_out"] else ""
        name = row["title"] if row["title"] != row["asin"] else f"(no title) {row['brand']}".rstrip()
        typer.echo(f"{row['rank']:>3}  {row['score']:8.4f}  {row['asin']}  {name}{mark}")


@app.command()
def export(
    dataset: str = typer.Option("magazine", "--dataset", help="dataset name"),
    model: Optional[str] = typer.Option(None, "--model", help="model name of the trained run (not needed with --format mmrec)"),
    seed: int = typer.Option(1, "--seed", help="seed of the trained run"),
    k: int = typer.Option(20, "-k", help="recommendations per user"),
    exclude: str = typer.Option("train,valid,test", "--exclude", help="splits whose items a user is not recommended (comma-separated; 'train' = the evaluation's masking)"),
    fmt: str = typer.Option("serve", "--format", help="serve: recommendations, embeddings and a FAISS index of a run; mmrec: the dataset's split and features in MMRec's layout"),
    out: Optional[str] = typer.Option(None, "--out", help="output folder (default exports/<dataset>/<model>-<seed>, or exports/mmrec/<dataset>)"),
) -> None:
    """Export a trained run for serving, or a dataset for MMRec, outside DVC."""
    from pathlib import Path

    from pipeline.paths import export_dir, mmrec_export_dir, stage_dir

    if fmt not in ("serve", "mmrec"):
        raise UserError(f"--format: expected 'serve' or 'mmrec', got {fmt!r}")
    _known(dataset)
    ingest = stage_dir(dataset, "ingest")
    if not (ingest / "interactions.parquet").exists():
        raise UserError(f"{ingest / 'interactions.parquet'}: file not found (ingest the dataset first: simgr ingest {dataset}, or dvc repro ingest@{dataset})")
    flag = "--out" if out else ""
    if fmt == "mmrec":
        from pipeline.export.mmrec import export_mmrec

        folder = Path(out) if out else mmrec_export_dir(dataset)
        done = export_mmrec(ingest, stage_dir(dataset, "features"), folder, dataset, out_flag=flag)
        typer.echo(f"{folder}: {dataset}.inter ({done['n_interactions']} interactions, "
                   f"{', '.join(f'{s} {n}' for s, n in done['splits'].items())}), id maps, "
                   f"{', '.join(done['features']) or 'no feature matrix'}, {dataset}.yaml (MMRec data_path: {folder.parent})")
        return
    if not model:
        raise UserError("--model: required with --format serve (the run to export, e.g. --model simgr --seed 1)")
    from pipeline.export.serving import export_run

    run = _trained_run(dataset, model, seed, "export")
    folder = Path(out) if out else export_dir(dataset, model, seed)
    manifest = export_run(ingest, run, folder, k=k, exclude=[s for s in exclude.split(",") if s], run=run.as_posix(), out_flag=flag)
    typer.echo(f"{folder}: top {k} of {manifest['n_users']} users ({manifest['n_recommendations']} rows, "
               f"{'+'.join(manifest['excluded']) or 'nothing'} masked), user/item embeddings ({manifest['dim']}-d), "
               "items.faiss, manifest.json")


def main() -> None:
    try:
        from typer._click import exceptions as click_errors  # typer vendors click
    except ImportError:  # pragma: no cover - an older typer on plain click
        from click import exceptions as click_errors  # type: ignore[no-redef]

    try:
        code = app(prog_name="simgr", standalone_mode=False)
    except click_errors.NoArgsIsHelpError as exc:  # `simgr` alone: its help, as before
        typer.echo(exc.ctx.get_help() if exc.ctx else str(exc))
        raise SystemExit(2) from None
    except click_errors.UsageError as exc:  # a bad option or argument: one line naming the command
        where = exc.ctx.command_path if exc.ctx else "simgr"
        print(f"error: {where}: {exc.format_message()} (see {where} --help)", file=sys.stderr)
        raise SystemExit(2) from None
    except click_errors.ClickException as exc:
        print(f"error: {exc.format_message()}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    except typer.Abort:
        print("aborted", file=sys.stderr)
        raise SystemExit(1) from None
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except OSError as exc:  # a path that cannot be read or written (pipeline.errors.os_error_line)
        if os.environ.get("SIMGR_TRACEBACK"):
            raise
        print(f"error: {os_error_line(exc)}", file=sys.stderr)
        raise SystemExit(2) from None
    if isinstance(code, int) and code:
        raise SystemExit(code)


if __name__ == "__main__":
    main()
