"""An HTML page template for ``dvc plots show`` that works offline: vega, vega-lite and vega-embed inlined.

DVC's default page loads the three libraries from a CDN, so without network it is blank. DVC
accepts a page template (``dvc plots show --html-template FILE``, or ``plots.html_template`` in
``.dvc/config``, a path relative to ``.dvc/``) that must hold ``{plot_divs}``; DVC puts its CDN
``<script>`` tags where the template has ``{scripts}``, so this one has no ``{scripts}`` and
inlines the vendored builds instead (``vendor/vega/``, versions and licenses in its README).
The page is self-contained: it can be copied or mailed and opens without network.

:func:`offline_template` builds the page from the vendored files; ``vendor/vega/dvc_plots.html``
is its committed output (``python -m stages.plots_template`` rewrites it; a test checks it is up
to date).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pipeline.errors import UserError

VENDOR = Path("vendor") / "vega"
TEMPLATE = VENDOR / "dvc_plots.html"
#: the vendored builds, in load order (vega-embed needs vega and vega-lite)
ASSETS = ("vega.min.js", "vega-lite.min.js", "vega-embed.min.js")
VERSIONS = VENDOR / "versions.json"

_PAGE = """<!DOCTYPE html>
<html>
<head>
    <meta charset="utf-8">
    {{refresh_tag}}
    <title>SiMGR results (dvc plots)</title>
    <style>
        body {{ font-family: sans-serif; margin: 16px; }}
        .plots {{ display: flex; flex-wrap: wrap; gap: 8px 24px; align-items: flex-start; }}
        .plots > div {{ min-width: 300px; }}
        p.note {{ color: #555; font-size: 13px; }}
        table {{ border-spacing: 15px; }}
    </style>
{scripts}
</head>
<body>
    <h2>SiMGR results</h2>
    <p class="note">Per dataset: validation R@20 per epoch (one line per model, mean over seeds), Table 2 and the
    Figure-3 ablation (test metrics, mean &plusmn; std over seeds), sensitivity sweeps. Per-run training curves:
    <code>dvc plots show logs/&lt;dataset&gt;/&lt;model&gt;-&lt;seed&gt;</code>. Rendered offline with {libraries}.</p>
    <div class="plots">
    {{plot_divs}}
    </div>
</body>
</html>
"""


def offline_template(vendor: str | Path = VENDOR) -> str:
    """The page template with the vendored builds inlined, in :data:`ASSETS` order."""
    vendor = Path(vendor)
    versions = _versions(vendor)
    scripts = []
    for name in ASSETS:
        path = vendor / name
        if not path.is_file():
            raise UserError(f"{path}: vendored build not found (see {vendor / 'README.md'} to restore it)")
        code = path.read_text(encoding="utf-8")
        if "</script" in code.lower():
            raise UserError(f"{path}: holds '</script', which would end the inline <script> early")
        for placeholder in ("{plot_divs}", "{scripts}", "{refresh_tag}"):
            if placeholder in code:
                raise UserError(f"{path}: holds DVC's placeholder {placeholder}, which DVC would replace")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        scripts.append(f"    <!-- {name}: {versions[name]}, sha256 {digest}, license in vendor/vega/{versions[name + ':license']} -->\n"
                       f"    <script type=\"text/javascript\">{code}</script>")
    libraries = ", ".join(versions[name] for name in ASSETS)
    return _PAGE.format(scripts="\n".join(scripts), libraries=libraries)


def _versions(vendor: Path) -> dict[str, str]:
    path = vendor / VERSIONS.name
    if not path.is_file():
        raise UserError(f"{path}: file not found (the vendored package versions)")
    data = json.loads(path.read_text())
    out = {}
    for name in ASSETS:
        entry = data.get(name)
        if not isinstance(entry, dict) or not {"package", "version", "license"} <= set(entry):
            raise UserError(f"{path}: expected an entry '{name}' with 'package', 'version' and 'license'")
        out[name] = f"{entry['package']} {entry['version']}"
        out[name + ":license"] = entry["license"]
    return out


def write_template(path: str | Path = TEMPLATE, vendor: str | Path = VENDOR) -> Path:
    path = Path(path)
    path.write_text(offline_template(vendor), encoding="utf-8")
    return path
