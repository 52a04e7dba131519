"""The `simgr` command line. Subcommands mirror the DVC stages, for use outside DVC.

Stage-mirroring commands (`simgr features magazine`) run exactly what `dvc repro` runs for that
stage, with the parameters in ``params.yaml``. `simgr ingest`, `simgr synth`, `simgr recommend`
and `simgr export` work on a user's own files or on the pipeline's outputs, outside DVC. A ``UserError`` is printed as one line (no
traceback) with exit status 2.
"""

from __future__ import annotations

import importlib
import sys
from typing import Optional

import typer

from pipeline.errors import UserError

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

    typer.echo(run_check(params))


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


@app.command("repro-check")
def repro_check(
    keep: bool = typer.Option(False, "--keep", help="keep the temporary clone (its path is printed)"),
    workdir: Optional[str] = typer.Option(None, "--dir", help="clone into this folder instead of a temporary one"),
) -> None:
    """Rebuild the committed HEAD in a clone and compare every output by the reproducibility contract."""
    _stage("repro_check", *(["--keep"] if keep else []), *(["--dir", workdir] if workdir else []))


# -- commands on a user's own files (each defined in its own section below) ------------------

SEP_NAMES = {"\\t": "\t", "tab": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}


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
    reviews: str = typer.Option(..., "--reviews", help="interactions file: Amazon 2014/2018 reviews or ratings CSV, MMRec .inter, or delimited text / parquet of user, item, rating[, timestamp]"),
    out: str = typer.Option(..., "--out", help="folder for interactions/users/items.parquet and stats.json"),
    meta: Optional[str] = typer.Option(None, "--meta", help="Amazon metadata file (meta_<Cat>.json.gz)"),
    images: Optional[str] = typer.Option(None, "--images", help="Amazon 2014 image features (.b); only counted here"),
    image_dim: int = typer.Option(4096, "--image-dim", help="floats per .b record"),
    fmt: str = typer.Option("auto", "--format", help="auto, amazon2014, amazon2018, mmrec or generic"),
    sep: Optional[str] = typer.Option(None, "--sep", help="field separator of delimited text (',', ';', '|', '\\t' or tab); detected when not given"),
    header: Optional[bool] = typer.Option(None, "--header/--no-header", help="line 1 holds column names (detected when not given)"),
    columns: Optional[str] = typer.Option(None, "--columns", help="where user,item,rating[,timestamp] are: header names or 1-based positions, e.g. userId,movieId,rating or 1,2,3,4 (detected from the header when not given)"),
    kcore: int = typer.Option(5, "--kcore", help="k of the user/item k-core (0 or 1: none)"),
    seed: int = typer.Option(999, "--seed", help="seed of the random split"),
    split: str = typer.Option("random", "--split", help="random (MMRec per-user rule) or temporal (global 8:1:1)"),
    rating_min: float = typer.Option(1.0, "--rating-min", help="lowest valid rating"),
    rating_max: float = typer.Option(5.0, "--rating-max", help="highest valid rating"),
    on_error: str = typer.Option("raise", "--on-error", help="raise at a malformed line, or skip and count it"),
) -> None:
    """Ingest your own files outside DVC: clean, k-core, re-index, split, write the four files."""
    from pathlib import Path

    from pipeline.ingest.dataset import IngestConfig, ingest as run_ingest

    if Path(out).exists() and not Path(out).is_dir():
        raise UserError(f"--out {out}: exists and is not a folder (the outputs are four files in a folder)")
    cfg = IngestConfig(kcore=kcore, rating_min=rating_min, rating_max=rating_max, split=split, seed=seed, on_error=on_error)
    cfg.check(lambda key: "--" + key.replace("_", "-"))
    delimited = {"sep": SEP_NAMES.get(sep, sep) if sep is not None else None, "header": header,
                 "fields": _columns(columns, header) if columns is not None else None}
    delimited = {k: v for k, v in delimited.items() if v is not None}
    if delimited and fmt == "auto":
        fmt = "generic"  # only delimited text has a separator, a header and columns
    if delimited and fmt != "generic":
        raise UserError(f"--sep/--header/--columns describe delimited text (--format generic), not --format {fmt}")
    if "sep" in delimited and len(delimited["sep"]) != 1:
        raise UserError(f"--sep: expected one character (or tab), got {sep!r}")
    source = {"format": fmt, "reviews": reviews, "meta": meta, "images": images, "image_dim": image_dim, **delimited}
    stats = run_ingest(source, cfg, out, name=reviews)
    with_image = stats["items"]["with_image"]
    typer.echo(
        f"{out}: {stats['n_users']} users, {stats['n_items']} items, {stats['n_interactions']} interactions "
        f"({', '.join(f'{k} {v}' for k, v in stats['splits'].items())}); dropped {stats['dropped']}"
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

    from pipeline.synth import write_synthetic

    paths = write_synthetic(
        Path(out), n_users=users, n_items=items, n_interactions=interactions, n_clusters=clusters,
        image_dim=image_dim, seed=seed, category=category,
    )
    for kind, path in paths.items():
        typer.echo(f"{kind}: {path}")


@app.command()
def recommend(
    user: str = typer.Option(..., "--user", help="the raw user id (as in the reviews file)"),
    k: int = typer.Option(20, "-k", help="number of items to show"),
    dataset: str = typer.Option("magazine", "--dataset", help="dataset name"),
    model: str = typer.Option("simgr", "--model", help="model name of the trained run"),
    seed: int = typer.Option(1, "--seed", help="seed of the trained run"),
) -> None:
    """Print a user's top items (with titles) from a trained run, training items excluded."""
    from pipeline.evaluation.recommend import recommend_user
    from pipeline.paths import model_dir, stage_dir

    run = model_dir(dataset, model, seed)
    if not run.is_dir():
        raise UserError(f"{run}: run directory not found (train it: simgr train {dataset} {model} {seed})")
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

    from pipeline.paths import export_dir, mmrec_export_dir, model_dir, stage_dir

    ingest = stage_dir(dataset, "ingest")
    if not (ingest / "interactions.parquet").exists():
        raise UserError(f"{ingest / 'interactions.parquet'}: file not found (ingest the dataset first: simgr ingest / dvc repro ingest@{dataset})")
    if fmt == "mmrec":
        from pipeline.export.mmrec import export_mmrec

        folder = Path(out) if out else mmrec_export_dir(dataset)
        done = export_mmrec(ingest, stage_dir(dataset, "features"), folder, dataset)
        typer.echo(f"{folder}: {dataset}.inter ({done['n_interactions']} interactions, "
                   f"{', '.join(f'{s} {n}' for s, n in done['splits'].items())}), id maps, "
                   f"{', '.join(done['features']) or 'no feature matrix'}, {dataset}.yaml (MMRec data_path: {folder.parent})")
        return
    if fmt != "serve":
        raise UserError(f"--format: expected 'serve' or 'mmrec', got {fmt!r}")
    if not model:
        raise UserError("--model: required with --format serve (the run to export, e.g. --model simgr --seed 1)")
    from pipeline.export.serving import export_run

    run = model_dir(dataset, model, seed)
    if not run.is_dir():
        raise UserError(f"{run}: run directory not found (train it: simgr train {dataset} {model} {seed})")
    folder = Path(out) if out else export_dir(dataset, model, seed)
    manifest = export_run(ingest, run, folder, k=k, exclude=[s for s in exclude.split(",") if s], run=run.as_posix())
    typer.echo(f"{folder}: top {k} of {manifest['n_users']} users ({manifest['n_recommendations']} rows, "
               f"{'+'.join(manifest['excluded']) or 'nothing'} masked), user/item embeddings ({manifest['dim']}-d), "
               "items.faiss, manifest.json")


def main() -> None:
    try:
        app()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
