"""The Colab edition (colab/): current with the chapters, free of website markup, and runnable where only the
package was installed, outside the repository."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dldna.book.colab import FORM_TITLE, OUT, SOURCE, stale_files
from dldna.book.myst import MYST_ONLY
from tests.test_notebooks import REPOSITORY, ROOT

EDITION = sorted((ROOT / OUT / SOURCE).rglob("*.ipynb"))  # the English edition; the translated ones: test_i18n.py
CHAPTERS = sorted((ROOT / SOURCE).rglob("*.ipynb"))


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_the_committed_edition_is_current() -> None:
    stale = stale_files(ROOT)
    assert not stale, f"colab/ is out of date with chapters/: run `make colab` and commit ({stale})"
    assert len(EDITION) == len(CHAPTERS)


@pytest.mark.parametrize("path", EDITION, ids=lambda p: str(p.relative_to(ROOT / OUT)))
def test_a_colab_notebook_shows_no_website_markup_and_installs_the_package(path: Path) -> None:
    notebook = load(path)
    markdown = ["".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "markdown"]
    code = ["".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code"]
    raw = [m.group(0) for text in markdown for m in MYST_ONLY.finditer(text)]
    assert not raw, f"MyST markup a notebook viewer shows as text: {raw[:5]}"
    assert not any("{{" in text for text in markdown), "a glued value left in plain Markdown"
    assert not any("myst_nb" in text for text in code), "myst_nb is a website build tool, absent in Colab"
    install = code[0]
    assert f'"dldna @ git+{REPOSITORY}"' in install and "from dldna import setup_notebook" in install
    assert "pip install dldna" not in install.replace('"dldna @', "")
    for cell in notebook["cells"]:
        if cell["metadata"].get("cellView") == "form":
            assert "".join(cell["source"]).startswith("#@title"), "a Colab form cell starts with #@title"
    cites = any("{cite" in "".join(c["source"]) for c in load(ROOT / path.relative_to(ROOT / OUT)).get("cells", []))
    assert ("## References" in "\n".join(markdown)) == cites


def test_glued_paragraphs_become_form_cells_that_ship_with_placeholders() -> None:
    notebook = load(ROOT / OUT / "chapters" / "getting_started.ipynb")
    forms = [cell for cell in notebook["cells"] if "".join(cell["source"]).startswith(FORM_TITLE)]
    assert forms, "the getting-started chapter quotes glued values, so it needs form cells"
    shown = "".join(forms[0]["outputs"][0]["data"]["text/markdown"])
    assert "[…]" in shown and "{{" not in shown


def _python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


@pytest.fixture(scope="module")
def colab_like_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with only torch, ipykernel and nbclient, then `pip install` of a copy of the
    package (not editable, with its own dependencies), as in Colab."""
    work = tmp_path_factory.mktemp("colab-env")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = _python(venv)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "torch==2.13.0", "ipykernel", "nbclient"], check=True)
    source = work / "package"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "dldna", source / "dldna", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([*pip, str(source)], check=True)
    missing = subprocess.run([str(python), "-c", "import myst_nb"], capture_output=True)
    assert missing.returncode != 0, "the Colab-like environment must not have the website's build tools"
    return python


RUNNER = """
import sys, nbformat
from nbclient import NotebookClient
notebook = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": sys.argv[2]}}).execute()
nbformat.write(notebook, sys.argv[1])
"""


@pytest.mark.slow
@pytest.mark.timeout(1800)  # a fresh environment, then a whole chapter on the CPU
@pytest.mark.parametrize("name", ["chapters/getting_started.ipynb", "chapters/exercises/optimizers.ipynb"])
def test_a_colab_notebook_runs_where_only_the_package_is_installed(colab_like_python: Path, tmp_path: Path, name: str) -> None:
    folder = tmp_path / "reader"
    folder.mkdir()
    notebook = folder / Path(name).name
    shutil.copy(ROOT / OUT / name, notebook)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DLDNA_", "PYTHON", "VIRTUAL_ENV", "MPL"))}
    env["PATH"] = f"{colab_like_python.parent}{os.pathsep}{env.get('PATH', '')}"
    run = subprocess.run([str(colab_like_python), "-c", RUNNER, str(notebook), str(folder)], cwd=folder, env=env,
                         capture_output=True, text=True, timeout=1500)
    assert run.returncode == 0, run.stderr[-3000:]
    executed = load(notebook)
    outputs = [output for cell in executed["cells"] for output in cell.get("outputs", [])]
    assert not [o for o in outputs if o["output_type"] == "error"]
    paragraphs = ["".join(o["data"]["text/markdown"]) for cell in executed["cells"] if cell["metadata"].get("cellView") == "form"
                  for o in cell.get("outputs", []) if "text/markdown" in o.get("data", {})]
    assert all("[…]" not in text for text in paragraphs), "a paragraph still shows a placeholder after the run"
    if "exercises" in name:
        printed = "".join("".join(o["text"]) for o in outputs if o["output_type"] == "stream")
        calls = sum("".join(c["source"]).count('check("') for c in executed["cells"] if c["cell_type"] == "code")
        assert printed.count("✓ Correct") == calls > 0 and "✗" not in printed
    else:
        assert paragraphs and any("%" in text for text in paragraphs)
        assert any("image/png" in o.get("data", {}) for o in outputs), "the chapter's figures must show in Colab"
