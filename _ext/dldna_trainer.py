"""Sphinx extension: the browser trainer, on the pages that hold one.

A page asks for the trainer with a raw HTML element in a Markdown cell, ``<div class="dldna-trainer">…</div>``,
whose text is what a notebook viewer (Colab) shows in its place. At the start of the build, :func:`write_trainer`
puts the trainer's files into the site's static folder as ``_static/trainer/``: its script and style and the
vendored TensorFlow.js (``_trainer/``), and the experiment exported from the package
(:func:`dldna.browser.export_trainer`: the controls' spec, the data, the initial weights and the batch order),
with the spec saying where each TensorFlow.js file is and how large. Only pages with the element get the
trainer's script (a few kilobytes); it fetches TensorFlow.js and the data when the reader first touches it.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx

from dldna.browser import export_trainer

SOURCE = Path(__file__).resolve().parents[1] / "_trainer"
FOLDER = "trainer"
MARKER = 'class="dldna-trainer"'
LIBRARY = "tfjs/tf.es2017.min.js"
"""TensorFlow.js with its gradients and its CPU and WebGL backends."""
BACKENDS = {
    "webgpu": ("tfjs/tf-backend-webgpu.es2017.min.js",),
    "wasm": ("tfjs/tf-backend-wasm.es2017.min.js", "tfjs/tfjs-backend-wasm-simd.wasm"),
}
"""The backends loaded only where they are used: each one's script, then what else it fetches (WebAssembly: the
SIMD binary, which every current browser takes; ``tfjs-backend-wasm.wasm`` is there for the others)."""


def write_trainer(folder: Path) -> dict[str, Any]:
    """Write everything the trainer serves into ``folder``; returns its spec."""
    shutil.copytree(SOURCE, folder, dirs_exist_ok=True)
    library = {
        "core": LIBRARY,
        "backends": {name: files[0] for name, files in BACKENDS.items()},
        "wasm_folder": "tfjs/",
        "bytes": {
            "core": (folder / LIBRARY).stat().st_size,
            "backends": {name: sum((folder / file).stat().st_size for file in files) for name, files in BACKENDS.items()},
        },
    }
    return export_trainer(folder, extra={"library": library})


def _add_trainer(app: Sphinx) -> None:
    static = Path(tempfile.mkdtemp(prefix="dldna-trainer-"))
    write_trainer(static / FOLDER)
    app.config.html_static_path.append(str(static))


def _load_on_trainer_pages(app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any) -> None:
    if MARKER in context.get("body", ""):
        app.add_js_file(f"{FOLDER}/trainer.js", loading_method="defer")
        app.add_css_file(f"{FOLDER}/trainer.css")


def setup(app: Sphinx) -> dict[str, object]:
    app.connect("builder-inited", _add_trainer)
    # Before dldna_site's handlers (priority 500), which replace the page's list of scripts with a filtered copy.
    app.connect("html-page-context", _load_on_trainer_pages, priority=400)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
