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

Each language the book has catalogs for (:mod:`dldna.book.i18n`) gets its own edition, ``colab/<lang>/...``: the
same notebooks with their Markdown translated (a paragraph not translated yet keeps its English) and the words
the edition adds (the note above, the titles of form cells, admonitions and references) taken from the
language's ``editions.po``.

Usage: ``python -m dldna.book.colab [--out colab] [--check]`` (``make colab``); ``--check`` only reports whether
the committed editions are current.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dldna.book import PLACEHOLDER, fill
from dldna.book.i18n import EDITIONS_CATALOG, interface_text, languages, myst_extensions, translate_notebook, translations
from dldna.book.myst import ADMONITIONS, DIRECTIVE, cited_keys, load_references, to_notebook_markdown

SOURCE = Path("chapters")
OUT = Path("colab")
FORM_TITLE = "#@title Text with your run's numbers"
SOLUTION_TITLE = "#@title Worked solution (double-click to show the code)"
MODEL_ANSWER = "<b>A model answer</b> (click to open)"
REFERENCES = "References"
RUNNING_NOTE = (
    "> **Running this notebook.** This is the Colab edition of a chapter of *How Deep Networks Are Optimized*. "
    "Run the cells from the top (*Runtime → Run all*); the first one installs the book's package. On a GPU "
    "runtime (*Runtime → Change runtime type*) the experiments run at full size, on a CPU with fewer samples or "
    "epochs. Paragraphs that quote results show the numbers of your own run once the cells above them have run."
)


@dataclass(frozen=True)
class Labels:
    """The words the edition adds around a chapter, in the edition's language."""

    running_note: str = RUNNING_NOTE
    form_title: str = FORM_TITLE
    solution_title: str = SOLUTION_TITLE
    model_answer: str = MODEL_ANSWER
    references: str = REFERENCES
    admonitions: dict[str, str] = field(default_factory=lambda: dict(ADMONITIONS))
    """The title of each kind of admonition (``note``: ``Note``)."""

    @classmethod
    def translated(cls, root: Path, lang: str) -> Labels:
        """The labels in ``lang``, from its ``editions.po``; raises ``ValueError`` naming a label not translated."""
        english = cls()

        def text(value: str) -> str:
            return interface_text(root, lang, EDITIONS_CATALOG, value)

        def title(value: str) -> str:
            return "#@title " + text(value.removeprefix("#@title "))

        return cls(
            running_note=text(english.running_note),
            form_title=title(english.form_title),
            solution_title=title(english.solution_title),
            model_answer=text(english.model_answer),
            references=text(english.references),
            admonitions={name: text(label) for name, label in english.admonitions.items()},
        )


ENGLISH = Labels()


def edition_folder(lang: str) -> Path:
    """Where the edition in ``lang`` lives: ``colab`` for English, ``colab/<lang>`` for a translation."""
    return OUT if lang == "en" else OUT / lang


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


def _paragraph_cell(template: str, labels: Labels) -> dict[str, Any]:
    """A form cell that shows ``template`` with the reader's values; it ships showing ``[…]`` placeholders."""
    if '"""' in template or template.endswith("\\"):
        raise ValueError(f"a glued paragraph cannot be quoted in a form cell: {template[:80]}")
    code = f'{labels.form_title}\nfrom dldna.book import show_paragraph\n\nshow_paragraph(r"""\n{template}\n""")'
    shown = fill(template, {})
    return {
        "cell_type": "code",
        "execution_count": None,
        "metadata": {"cellView": "form"},
        "outputs": [{"output_type": "display_data", "metadata": {}, "data": {"text/markdown": _lines(shown), "text/plain": _lines(shown)}}],
        "source": _lines(code),
    }


def _markdown_cells(markdown: str, labels: Labels) -> list[dict[str, Any]]:
    """Plain Markdown cells for the text without glued values, a form cell for each block that quotes one."""
    cells, plain = [], []
    for block in _blocks(markdown):
        if PLACEHOLDER.search(block):
            if plain:
                cells.append(_markdown_cell("\n\n".join(plain)))
                plain = []
            cells.append(_paragraph_cell(block, labels))
        else:
            plain.append(block)
    if plain:
        cells.append(_markdown_cell("\n\n".join(plain)))
    return cells


def _solution_cell(cell: dict[str, Any], labels: Labels) -> dict[str, Any]:
    result = copy.deepcopy(cell)
    if cell["cell_type"] == "markdown":
        body = "".join(cell["source"]).strip()
        result["source"] = _lines(f"<details><summary>{labels.model_answer}</summary>\n\n{body}\n\n</details>")
        result["metadata"] = {}
        return result
    result["source"] = _lines(f"{labels.solution_title}\n" + "".join(cell["source"]))
    result["metadata"] = {"cellView": "form"}
    return result


def _titled_admonitions(markdown: str, titles: dict[str, str]) -> str:
    """``markdown`` with every admonition written as a ``{admonition}`` whose title is its kind's title in
    ``titles``, so that the notebook form of a translated page titles it in its language."""

    def retitle(match: re.Match[str]) -> str:
        name, argument, body = match["name"], match["argument"].strip(), _titled_admonitions(match["body"], titles)
        if name in titles:
            title = titles[name] + (f": {argument}" if argument else "")
            return f"{match['fence']}{{admonition}} {title}\n{body}{match['fence']}\n"
        start, end = match.start("body") - match.start(), match.end("body") - match.start()
        return match[0][:start] + body + match[0][end:]

    return DIRECTIVE.sub(retitle, markdown)


def _converted(markdown: str, references: dict[str, Any], keys: list[str], labels: Labels) -> str:
    """A Markdown cell's text as a notebook viewer shows it, in the labels' language."""
    if labels == ENGLISH:
        return to_notebook_markdown(markdown, references, keys)
    converted = to_notebook_markdown(_titled_admonitions(markdown, labels.admonitions), references, keys)
    return re.sub(rf"^## {re.escape(REFERENCES)}$", f"## {labels.references}", converted, flags=re.M)


def colab_notebook(notebook: dict[str, Any], references: dict[str, Any], labels: Labels = ENGLISH) -> dict[str, Any]:
    """The Colab edition of one notebook (as nbformat JSON), with the edition's own words in ``labels``."""
    keys = cited_keys("\n".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "markdown"))
    cells: list[dict[str, Any]] = []
    for index, cell in enumerate(notebook["cells"]):
        tags = cell.get("metadata", {}).get("tags", [])
        if cell["cell_type"] == "markdown" and "solution" not in tags:
            converted = _converted("".join(cell["source"]), references, keys, labels)
            cells += _markdown_cells(converted, labels)
            if index == 0:
                cells.append(_markdown_cell(labels.running_note))
        elif "solution" in tags:
            cells.append(_solution_cell(cell, labels))
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


def bibliography_files(root: Path) -> list[Path]:
    """The book's BibTeX files (``bibtex_bibfiles`` in ``_config.yml``)."""
    import yaml

    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    return [root / name for name in config.get("bibtex_bibfiles", [])]


def edition(root: Path) -> dict[Path, str]:
    """The whole Colab edition, English and every translation, as ``{path relative to root: file text}``.
    Raises ``ValueError`` when a translation lacks one of the edition's own labels."""
    references = load_references(bibliography_files(root))
    extensions = myst_extensions(root)
    labels = {"en": ENGLISH} | {lang: Labels.translated(root, lang) for lang in languages(root)}
    files = {}
    for path in sorted((root / SOURCE).rglob("*.ipynb")):
        if ".ipynb_checkpoints" in path.parts:
            continue
        notebook = json.loads(path.read_text(encoding="utf-8"))
        page = path.relative_to(root).with_suffix("").as_posix()
        for lang, words in labels.items():
            source = notebook if lang == "en" else translate_notebook(notebook, translations(root, lang, page), extensions)
            text = json.dumps(colab_notebook(source, references, words), indent=1, ensure_ascii=False) + "\n"
            files[edition_folder(lang) / path.relative_to(root)] = text
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
    try:
        stale = stale_files(root, arguments.out) if arguments.check else []
        written = [] if arguments.check else write(root, arguments.out)
    except ValueError as error:
        sys.exit(str(error))
    if arguments.check:
        if stale:
            sys.exit(f"the Colab edition is out of date ({', '.join(stale)}): run `make colab` and commit {arguments.out}/")
        print(f"the Colab edition in {arguments.out}/ is current")
        return
    print(f"wrote {len(written)} notebooks to {arguments.out}/")


if __name__ == "__main__":
    main()
