"""The `simgr` command line. Subcommands mirror the DVC stages, for use outside DVC.

Stage-mirroring commands (`simgr features magazine`) run exactly what `dvc repro` runs for that
stage, with the parameters in ``params.yaml``. `simgr ingest`, `simgr synth` and
`simgr recommend` work on a user's own files. A ``UserError`` is printed as one line (no
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
    help="Sign-aware multimodal recommendation: ingest, features, neighbors, graph, train, evaluate, report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _stage(name: str, *args: str) -> None:
    importlib.import_module(f"stages.{name}").main(*args)


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
    """FAISS item kNN lists and APFI candidate lists (stage `neighbors`)."""
    _stage("neighbors", dataset)


@app.command()
def graph(dataset: str = typer.Argument(..., help="dataset name from params.yaml 'datasets'")) -> None:
    """Signed graph with personalised thresholds and pseudo edges (stage `graph`)."""
    _stage("graph", dataset)


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
def evaluate(dataset: str = typer.Argument(..., help="dataset name")) -> None:
    """Full-ranking evaluation of every trained run of a dataset (stage `evaluate`)."""
    _stage("evaluate", dataset)


@app.command()
def report(dataset: str = typer.Argument(..., help="dataset name")) -> None:
    """Benchmark report in the shape of the paper's Table 2 (stage `report`)."""
    _stage("report", dataset)


# -- commands on a user's own files (each defined in its own section below) ------------------

# @ingest-command


# @synth-command


# @recommend-command


def main() -> None:
    try:
        app()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
