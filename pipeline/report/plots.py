"""Small PNG charts for the report (matplotlib, Agg backend; no timestamps in the files)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from pipeline.atomic import atomic_file  # noqa: E402

_META = {"Software": None}  # keep the PNG bytes free of version strings


def grouped_bars(path: str | Path, labels: list[str], series: dict[str, tuple[list[float], list[float]]],
                 title: str, ylabel: str = "test metric") -> Path:
    """Bars per label, one group member per series (name -> (means, stds)); std as error bars (NaN = none)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(1.4 * max(len(labels), 3) + 1.5, 3.4), dpi=100)
    width = 0.8 / max(len(series), 1)
    x = np.arange(len(labels))
    for j, (name, (means, stds)) in enumerate(series.items()):
        err = np.nan_to_num(np.asarray(stds, dtype=float), nan=0.0)
        ax.bar(x + (j - (len(series) - 1) / 2) * width, means, width, yerr=err, capsize=3, label=name)
    ax.set_xticks(x, labels, rotation=15, ha="right", fontsize=8)
    return _save(fig, ax, path, title, ylabel)


def line_plot(path: str | Path, x: list[float], series: dict[str, list[float]], title: str, xlabel: str,
              ylabel: str = "test metric") -> Path:
    """One line per series over ``x`` (sensitivity sweeps)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(4.5, 3.2), dpi=100)
    for name, ys in series.items():
        ax.plot(x, ys, marker="o", label=name)
    ax.set_xlabel(xlabel)
    return _save(fig, ax, path, title, ylabel)


def sweep_panels(path: str | Path, sweeps: dict[str, tuple[list[float], dict[str, list[float]]]],
                 chosen: dict[str, float], title: str, ylabel: str = "R@20") -> Path:
    """One panel per swept key (key -> (values, series name -> metric per value)); the chosen value
    of each key marked by a dotted vertical line (Figures 4-6)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, len(sweeps), figsize=(3.2 * len(sweeps), 3.0), dpi=100, squeeze=False)
    for ax, (key, (x, series)) in zip(axes[0], sweeps.items()):
        for name, ys in series.items():
            ax.plot(x, ys, marker="o", label=name)
        if key in chosen:
            ax.axvline(chosen[key], color="grey", linestyle=":", linewidth=1)
        ax.set_xlabel(key)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    _write(fig, path)
    return path


def _save(fig, ax, path: Path, title: str, ylabel: str) -> Path:
    """Label, lay out and write a figure as PNG with fixed metadata (stable bytes), then close it."""
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    _write(fig, path)
    return path


def _write(fig, path: Path) -> None:
    """The figure as PNG, atomically (a temporary sibling renamed over ``path``), then closed."""
    try:
        with atomic_file(path) as tmp:
            fig.savefig(tmp, format="png", metadata=_META)
    finally:
        plt.close(fig)
