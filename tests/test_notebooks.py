"""The chapters as files: every notebook is in the table of contents, committed clean, and starts with the
cell that installs dldna from this repository."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
REPOSITORY = CONFIG["repository"]["url"]
NOTEBOOKS = sorted((ROOT / "chapters").rglob("*.ipynb"))


def toc_files(node: object) -> list[str]:
    """Every ``file:`` entry of _toc.yml, depth first."""
    if isinstance(node, dict):
        return ([node["file"]] if "file" in node else []) + [f for v in node.values() for f in toc_files(v)]
    if isinstance(node, list):
        return [f for item in node for f in toc_files(item)]
    return []


TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())
TOC_FILES = [TOC["root"], *toc_files(TOC)]


def test_every_toc_entry_exists_and_every_notebook_is_listed() -> None:
    for entry in TOC_FILES:
        assert any((ROOT / f"{entry}{suffix}").is_file() for suffix in (".ipynb", ".md")), f"{entry} is in _toc.yml but missing"
    listed = {str(p.relative_to(ROOT).with_suffix("")) for p in NOTEBOOKS}
    assert listed <= set(TOC_FILES), f"notebooks missing from _toc.yml: {sorted(listed - set(TOC_FILES))}"
    assert len(TOC_FILES) == len(set(TOC_FILES))


def test_every_chapter_has_its_exercises_as_first_section() -> None:
    chapters = [chapter for part in TOC["parts"] for chapter in part["chapters"]]
    assert chapters
    for chapter in chapters:
        sections = [section["file"] for section in chapter.get("sections", [])]
        expected = chapter["file"].replace("chapters/", "chapters/exercises/")
        assert sections[:1] == [expected], f"{chapter['file']} must list {expected} as its first section"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_is_committed_clean_and_installs_dldna_first(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "commit notebooks without outputs (scripts/nbclean.py)"
    first = code[0].source
    assert "import dldna" in first and f"git+{REPOSITORY}" in first and "setup_notebook()" in first
    assert notebook.cells[0].cell_type == "markdown" and notebook.cells[0].source.startswith("# ")
