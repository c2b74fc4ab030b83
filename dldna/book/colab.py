"""The Colab edition: every chapter and exercise notebook rewritten for a reader who runs it in Colab.

``chapters/`` stays the single source. The edition (``colab/chapters/...``, committed so that Colab can open it
from the repository) differs from it only where a notebook viewer would show website markup:

- MyST Markdown becomes plain Markdown (:mod:`dldna.book.myst`): author-year citations, a references list,
  block-quote admonitions;
- a paragraph that quotes glued values becomes a Colab form cell (``#@title``, ``cellView: form``) that shows
  the paragraph with the numbers of the reader's own run (:func:`dldna.book.show_paragraph`); until the cells
  above it have run it shows ``[…]`` in their place;
- a worked solution, folded on the website, is a form cell whose code stays hidden until the reader opens it;
  a written model answer is a ``<details>`` block;
- a first Markdown cell says how to run the notebook.

Usage: ``python -m dldna.book.colab [--out colab] [--check]`` (``make colab``); ``--check`` only reports whether
the committed edition is current.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

from dldna.book import PLACEHOLDER, fill
from dldna.book.myst import cited_keys, load_references, to_notebook_markdown

SOURCE = Path("chapters")
OUT = Path("colab")
FORM_TITLE = "#@title Text with your run's numbers"
SOLUTION_TITLE = "#@title Worked solution (double-click to show the code)"
RUNNING_NOTE = (
    "> **Running this notebook.** This is the Colab edition of a chapter of *How Deep Networks Are Optimized*. "
    "Run the cells from the top (*Runtime → Run all*); the first one installs the book's package. On a GPU "
    "runtime (*Runtime → Change runtime type*) the experiments run at full size, on a CPU with fewer samples or "
    "epochs. Paragraphs that quote results show the numbers of your own run once the cells above them have run."
)


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def _blocks(markdown: str) -> list[str]:
    """``markdown`` split at blank lines, keeping fenced code and display math whole."""
    blocks, current, fence = [], [], None
    for line in markdown.splitlines():
        stripped = line.strip()
        if fence is None and not stripped and current:
            blocks.append("\n".join(current))
            current = []
            continue
        if stripped.startswith(("```", "~~~", "$$")):
            marker = stripped[:3]
            if fence is None and not (marker == "$$" and stripped.count("$$") >= 2):
                fence = marker
            elif fence == marker:
                fence = None
        if stripped or current:
            current.append(line)
    if current:
        blocks.append("\n".join(current))
    return blocks


def _markdown_cell(text: str) -> dict[str, Any]:
    return {"cell_type": "markdown", "metadata": {}, "source": _lines(text)}


def _paragraph_cell(template: str) -> dict[str, Any]:
    """A form cell that shows ``template`` with the reader's values; it ships showing ``[…]`` placeholders."""
    if '"""' in template or template.endswith("\\"):
        raise ValueError(f"a glued paragraph cannot be quoted in a form cell: {template[:80]}")
    code = f'{FORM_TITLE}\nfrom dldna.book import show_paragraph\n\nshow_paragraph(r"""\n{template}\n""")'
    shown = fill(template, {})
    return {
        "cell_type": "code",
        "execution_count": None,
        "metadata": {"cellView": "form"},
        "outputs": [{"output_type": "display_data", "metadata": {}, "data": {"text/markdown": _lines(shown), "text/plain": _lines(shown)}}],
        "source": _lines(code),
    }


def _markdown_cells(markdown: str) -> list[dict[str, Any]]:
    """Plain Markdown cells for the text without glued values, a form cell for each block that quotes one."""
    cells, plain = [], []
    for block in _blocks(markdown):
        if PLACEHOLDER.search(block):
            if plain:
                cells.append(_markdown_cell("\n\n".join(plain)))
                plain = []
            cells.append(_paragraph_cell(block))
        else:
            plain.append(block)
    if plain:
        cells.append(_markdown_cell("\n\n".join(plain)))
    return cells


def _solution_cell(cell: dict[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(cell)
    if cell["cell_type"] == "markdown":
        body = "".join(cell["source"]).strip()
        result["source"] = _lines(f"<details><summary><b>A model answer</b> (click to open)</summary>\n\n{body}\n\n</details>")
        result["metadata"] = {}
        return result
    result["source"] = _lines(f"{SOLUTION_TITLE}\n" + "".join(cell["source"]))
    result["metadata"] = {"cellView": "form"}
    return result


def colab_notebook(notebook: dict[str, Any], references: dict[str, Any]) -> dict[str, Any]:
    """The Colab edition of one notebook (as nbformat JSON)."""
    keys = cited_keys("\n".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "markdown"))
    cells: list[dict[str, Any]] = []
    for index, cell in enumerate(notebook["cells"]):
        tags = cell.get("metadata", {}).get("tags", [])
        if cell["cell_type"] == "markdown" and "solution" not in tags:
            converted = to_notebook_markdown("".join(cell["source"]), references, keys)
            cells += _markdown_cells(converted)
            if index == 0:
                cells.append(_markdown_cell(RUNNING_NOTE))
        elif "solution" in tags:
            cells.append(_solution_cell(cell))
        else:
            code = copy.deepcopy(cell)
            code["metadata"] = {}
            cells.append(code)
    for number, cell in enumerate(cells):
        cell["id"] = f"cell-{number}"
    return {
        "cells": cells,
        "metadata": {
            "colab": {"provenance": [], "toc_visible": True},
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def _bibliography_files(root: Path) -> list[Path]:
    import yaml

    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    return [root / name for name in config.get("bibtex_bibfiles", [])]


def edition(root: Path) -> dict[Path, str]:
    """The whole Colab edition as ``{path relative to root: file text}``."""
    references = load_references(_bibliography_files(root))
    files = {}
    for path in sorted((root / SOURCE).rglob("*.ipynb")):
        if ".ipynb_checkpoints" in path.parts:
            continue
        notebook = json.loads(path.read_text(encoding="utf-8"))
        text = json.dumps(colab_notebook(notebook, references), indent=1, ensure_ascii=False) + "\n"
        files[OUT / path.relative_to(root)] = text
    return files


def stale_files(root: Path, out: Path = OUT) -> list[str]:
    """Files of the committed edition under ``root / out`` that differ from a fresh one, are missing or extra."""
    fresh = {out / path.relative_to(OUT): text for path, text in edition(root).items()}
    committed = {path.relative_to(root) for path in (root / out).rglob("*.ipynb")}
    stale = [str(path) for path, text in fresh.items() if not (root / path).is_file() or (root / path).read_text(encoding="utf-8") != text]
    return sorted(stale + [str(path) for path in committed - set(fresh)])


def write(root: Path, out: Path = OUT) -> list[Path]:
    """Write the edition under ``root / out`` (removing notebooks no chapter produces); returns what it wrote."""
    files = {out / path.relative_to(OUT): text for path, text in edition(root).items()}
    for old in (root / out).rglob("*.ipynb"):
        if old.relative_to(root) not in files:
            old.unlink()
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text, encoding="utf-8")
    return sorted(files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help="folder of the edition, relative to the repository")
    parser.add_argument("--check", action="store_true", help="only say whether the committed edition is current")
    parser.add_argument("--root", type=Path, default=Path("."), help="the book's repository (default: here)")
    arguments = parser.parse_args()
    root = arguments.root
    if not (root / "_config.yml").is_file() or not (root / SOURCE).is_dir():
        sys.exit(f"{root.resolve()} is not the book's repository (no _config.yml and chapters/): pass --root")
    if arguments.check:
        stale = stale_files(root, arguments.out)
        if stale:
            sys.exit(f"the Colab edition is out of date ({', '.join(stale)}): run `make colab` and commit {arguments.out}/")
        print(f"the Colab edition in {arguments.out}/ is current")
        return
    written = write(root, arguments.out)
    print(f"wrote {len(written)} notebooks to {arguments.out}/")


if __name__ == "__main__":
    main()
