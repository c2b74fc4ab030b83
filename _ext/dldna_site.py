"""Sphinx extension for the dldna website: a site that works offline and loads without console errors.

- plotly.js is served from the site itself, never from a CDN. The copy is the one shipped inside the installed
  plotly package, so the library the page loads always matches the one that wrote the figures; it is added to
  every page before any figure's script runs.
- The Colab launch button opens the Colab edition of the page (``colab/<page>.ipynb``, written by
  ``make colab``), whose Markdown a notebook viewer can render, instead of the MyST source.
- The book runs no code in the page (chapters open in Colab or Binder instead), so the in-page execution
  scripts of sphinx-thebe are left out: they point at a CDN and are added twice, which the browser reports as
  an error.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import plotly
from sphinx.application import Sphinx

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def _add_plotly(app: Sphinx) -> None:
    static = Path(tempfile.mkdtemp(prefix="dldna-static-"))
    shutil.copy(PLOTLY_JS, static / "plotly.min.js")
    app.config.html_static_path.append(str(static))
    app.add_js_file("plotly.min.js", priority=100)


def _is_thebe_script(script: Any) -> bool:
    return "thebe" in str(getattr(script, "filename", "") or "") or "THEBE_JS_URL" in getattr(script, "attributes", {}).get("body", "")


def _drop_thebe(app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any) -> None:
    context["script_files"] = [script for script in context.get("script_files", []) if not _is_thebe_script(script)]


COLAB_EDITION = "colab"


def _launch_colab_edition(app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any) -> None:
    """Point the page's Colab button at its Colab edition instead of the chapter's MyST source."""
    source = f"/blob/{app.config.html_theme_options.get('repository_branch', 'main')}/"
    for group in context.get("header_buttons", []):
        for button in group.get("buttons", []) if isinstance(group, dict) else []:
            url = button.get("url", "")
            if "colab.research.google.com/github/" in url and source in url:
                button["url"] = url.replace(source, f"{source}{COLAB_EDITION}/", 1)


def setup(app: Sphinx) -> dict[str, object]:
    app.connect("builder-inited", _add_plotly)
    app.connect("html-page-context", _drop_thebe)
    app.connect("html-page-context", _launch_colab_edition, priority=502)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
