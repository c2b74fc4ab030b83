"""Sphinx extension for the dldna website: serve plotly.js from the site itself, never from a CDN.

The plotly.min.js copied is the one shipped inside the installed plotly package, so the library the page loads
always matches the one that wrote the figures. It is added to every page before any figure's script runs.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import plotly
from sphinx.application import Sphinx

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def _add_plotly(app: Sphinx) -> None:
    static = Path(tempfile.mkdtemp(prefix="dldna-static-"))
    shutil.copy(PLOTLY_JS, static / "plotly.min.js")
    app.config.html_static_path.append(str(static))
    app.add_js_file("plotly.min.js", priority=100)


def setup(app: Sphinx) -> dict[str, object]:
    app.connect("builder-inited", _add_plotly)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
