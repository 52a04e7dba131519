"""The benchmark report of one dataset: Table 2, significance of the proposed model, Figure 3 ablation.

:func:`build_report` turns per-run metrics (and per-user test metrics for the significance tests)
into the markdown text, the CSV frame and the ablation chart's data. The number rules are in
:mod:`pipeline.report.tables`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import polars as pl

from pipeline.report.significance import PairedTest, compare
from pipeline.report.tables import (
    PCT_DECIMALS,
    Summary,
    csv_frame,
    display,
    fmt,
    markdown_table,
    rel_imp,
    short,
    summarize_runs,
)

PROTOCOL_TEXT = {
    "mmrec": "`mmrec` masking: the user's training items are excluded from the ranking; validation items stay rankable when testing (MMRec's protocol, which produced the paper's Table 2)",
    "strict": "`strict` masking: the user's training and validation items are excluded from the ranking when testing",
}
ABLATION_METRICS = ("recall@20", "ndcg@20")


@dataclass(frozen=True)
class Report:
    markdown: str
    table: pl.DataFrame  # the CSV: one row per model
    table_models: list[str]  # rows of Table 2, in order
    ablation: list[str]  # models of the ablation chart, in order
    summary: dict[str, dict[str, Summary]]
    significance: dict[str, tuple[str, PairedTest]]  # metric -> (best baseline, test)


def build_report(
    dataset: str,
    runs: dict[str, list[dict]],
    user_metrics: dict[str, list[pl.DataFrame]],
    *,
    seeds: list[int],
    metrics: list[str],
    proposed: str,
    ablation: list[str],
    protocol: str,
    valid_metric: str = "recall@20",
    chart: str | None = None,
    tuned: bool = False,
) -> Report:
    """``runs``: model -> metrics JSON of each seed, in run order; ``user_metrics``: model -> test-split
    ``user_metrics`` frames of each seed (needed for the proposed model and its best baselines)."""
    models = list(runs)
    all_metrics = list(dict.fromkeys(list(metrics) + list(ABLATION_METRICS)))
    summary = summarize_runs(runs, all_metrics)
    table_models = [m for m in models if m not in ablation]
    others = [m for m in table_models if m != proposed]
    ablation_models = [m for m in ablation if m in runs] + ([proposed] if proposed in runs else [])

    relimp = {m: rel_imp(summary, proposed, others, m) for m in metrics}
    significance: dict[str, tuple[str, PairedTest]] = {}
    if proposed in runs and others:
        for m in metrics:
            best = relimp[m][1]
            significance[m] = (best, compare(user_metrics[proposed], user_metrics[best], m))

    n_users = sorted({r["n_test_users"] for rs in runs.values() for r in rs})
    caps = sorted({r["max_validations"] for rs in runs.values() for r in rs if r.get("max_validations") is not None})
    capped = {m: sum(r.get("stop_reason") not in (None, "early_stopping") for r in rs) for m, rs in runs.items()}
    capped = {m: n for m, n in capped.items() if n}
    lines = [
        f"# Benchmark report: {dataset}",
        "",
        f"- Protocol: full ranking over all items, {PROTOCOL_TEXT.get(protocol, protocol)}.",
        f"- Model selection: each run's epoch was chosen by early stopping on **validation** {short(valid_metric)}; "
        + ("hyper-parameters were selected on validation by each model's study (section \"Hyper-parameters\" below). "
           if tuned else "hyper-parameters are those of `params.yaml`, fixed before testing. ")
        + "No choice was made on the test split.",
        f"- Test users: {', '.join(map(str, n_users))}. Seeds: {', '.join(map(str, seeds))}. "
        f"{cells_text(runs)}; best in **bold**, second best <u>underlined</u> (on the rounded means).",
        f"- Training budget: validation every `train.valid_every_steps` Adam steps (at epoch ends), early stopping "
        f"after `train.patience` validations without improvement, at most {', '.join(map(str, caps)) or 'n/a'} "
        "validations per run. "
        + (f"Runs that stopped on the budget (or a NaN loss) instead of patience: "
           f"{', '.join(f'{display(m)} {n}/{len(runs[m])}' for m, n in capped.items())}."
           if capped else "Every run stopped on patience, none on the budget."),
        "",
        "## Table 2: test results",
        "",
    ]
    extra = []
    if proposed in runs and others:
        extra.append([f"RelImp ({display(proposed)} vs best other)"] +
                     [f"{fmt(relimp[m][0], PCT_DECIMALS)}%" for m in metrics])
        extra.append(["best other"] + [display(relimp[m][1]) for m in metrics])
    lines += [markdown_table(summary, table_models, metrics, extra), ""]
    if extra:
        lines += ["RelImp = (proposed mean / best other model's mean - 1) x 100 per column, on unrounded means; "
                  f"the proposed model's ablation variants ({', '.join(display(a) for a in ablation)}) are not counted as others.", ""]

    if significance:
        lines += [
            f"## Significance: {display(proposed)} vs the best other model",
            "",
            "Per-user test metrics are averaged over seeds, then paired over the users both models evaluated "
            "(two-sided Wilcoxon signed-rank test with zero differences dropped, and a paired t-test).",
            "",
            f"| Metric | vs | n users | {display(proposed)} | other | Wilcoxon p | paired t p |",
            "|---|---|---|---|---|---|---|",
        ]
        for m, (best, t) in significance.items():
            lines.append(f"| {short(m)} | {display(best)} | {t.n_users} | {fmt(t.mean_a)} | {fmt(t.mean_b)} | "
                         f"{_p(t.wilcoxon_p)} | {_p(t.ttest_p)} |")
        lines.append("")

    if len(ablation_models) > 1:
        lines += ["## Figure 3: ablation (test)", ""]
        lines.append(markdown_table(summary, ablation_models, list(ABLATION_METRICS)))
        lines.append("")
        if chart:
            lines += [f"![ablation]({chart})", ""]
    roles = {m: "proposed" if m == proposed else "ablation" if m in ablation else "baseline" for m in models}
    table = csv_frame(summary, models, all_metrics, roles)
    return Report("\n".join(lines), table, table_models, ablation_models, summary, significance)


def cells_text(runs: dict[str, list[dict]]) -> str:
    """What a table cell holds: mean ± std over seeds, or plain values where a model has one seed."""
    counts = {len(rs) for rs in runs.values()}
    if counts == {1}:
        return "One seed per model: cells are the test metric of that run, rounded to 4 places"
    text = "Cells are mean ± sample std (ddof = 1) over seeds of the test metric, rounded to 4 places"
    return text + ("; a model with one seed shows its plain value" if 1 in counts else "")


def _p(p: float) -> str:
    if math.isnan(p):
        return "n/a"
    return f"{p:.2e}" if p < 1e-3 else f"{p:.4f}"
