"""`dvc plots show` offline: the page template inlines the vendored vega builds, the chart templates fill.

What a person sees was checked by rendering the page in headless Chromium without network
(README, "Results"); these tests keep the pieces that make that work from drifting.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
import yaml
from dvc_render import VegaRenderer, render_html

from pipeline.report.offline import ASSETS, offline_template

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / ".dvc" / "plots"


def test_the_committed_page_template_is_built_from_the_vendored_files(monkeypatch):
    monkeypatch.chdir(ROOT)
    committed = (ROOT / "vendor" / "vega" / "dvc_plots.html").read_text(encoding="utf-8")
    assert committed == offline_template(), "vendor/vega changed: run python -m stages.plots_template"
    for name in ASSETS:
        digest = hashlib.sha256((ROOT / "vendor" / "vega" / name).read_bytes()).hexdigest()
        assert f"<!-- {name}: " in committed and digest in committed
    assert "{plot_divs}" in committed and "{scripts}" not in committed  # no CDN <script> from DVC
    assert not re.search(r"<script[^>]+src=", committed)
    versions = json.loads((ROOT / "vendor" / "vega" / "versions.json").read_text())
    for entry in versions.values():
        assert (ROOT / "vendor" / "vega" / entry["license"]).read_text().startswith("Copyright (c) 2015")


def test_dvc_config_points_at_the_page_template():
    config = (ROOT / ".dvc" / "config").read_text()
    match = re.search(r"^\s*html_template\s*=\s*(\S+)\s*$", config, re.M)
    assert match and (ROOT / ".dvc" / match.group(1)).resolve() == (ROOT / "vendor" / "vega" / "dvc_plots.html")


CURVES = [
    {"model": "mf", "name": "MF-BPR", "epoch": "1", "recall@20": "0.1", "n_seeds": "3"},
    {"model": "mf", "name": "MF-BPR", "epoch": "2", "recall@20": "0.2", "n_seeds": "2"},
    {"model": "simgr", "name": "SiMGR", "epoch": "1", "recall@20": "0.15", "n_seeds": "3"},
]
BARS = [
    {"model": "mf", "name": "MF-BPR", "metric": "R@20", "mean": "0.2", "std": "0.01", "n_seeds": "3"},
    {"model": "simgr", "name": "SiMGR", "metric": "R@20", "mean": "0.25", "std": "", "n_seeds": "1"},
]


def _plot_defs() -> dict[str, dict]:
    return {next(iter(d)): next(iter(d.values())) for d in yaml.safe_load((ROOT / "dvc.yaml").read_text())["plots"]}


@pytest.mark.parametrize("plot_id, rows", [("reports/plots/curves", CURVES), ("reports/plots/table2", BARS),
                                           ("reports/plots/ablation", BARS)])
def test_default_views_fill_their_templates(plot_id, rows):
    props = dict(_plot_defs()[plot_id])
    rows = [dict(r, rev="workspace") for r in rows]
    renderer = VegaRenderer(rows, plot_id + "/toy.csv", template_dir=str(TEMPLATES), **props)
    spec = renderer.get_filled_template()
    text = json.dumps(spec)
    assert "<DVC_METRIC" not in text
    assert spec["data"]["values"] == rows
    assert spec["title"] == ""  # DVC passes the file path as the title when dvc.yaml gives none
    assert props["y_label"] in text and props["x"] in text and props["y"] in text


def test_the_page_renders_offline_with_dvc(tmp_path):
    props = dict(_plot_defs()["reports/plots/curves"])
    renderer = VegaRenderer([dict(r, rev="workspace") for r in CURVES], "reports/plots/curves/toy.csv",
                            template_dir=str(TEMPLATES), **props)
    out = render_html([renderer], tmp_path / "index.html", html_template=str(ROOT / "vendor" / "vega" / "dvc_plots.html"))
    page = Path(out).read_text(encoding="utf-8")
    assert "cdn.jsdelivr" not in page and not re.search(r"<script[^>]+src=", page)
    assert "vegaEmbed('#reports_plots_curves_toy_csv', spec)" in page
    assert page.count("<script type=\"text/javascript\">!function") == len(ASSETS)  # the three inlined builds
