"""Translations of the book: one gettext catalog per page, keyed by the English text, and the tools around them.

English stays the single source (``chapters/``, ``intro.md``). The text of a page in another language lives in
``locale/<lang>/LC_MESSAGES/<page>.po``, one entry per piece a reader sees as a unit (a paragraph, heading, list
item, table cell, admonition title, caption or exercise prompt: :mod:`dldna.book.segments`; and each sentence
the code shows as prose, a claim about the run: :mod:`dldna.book.sentences`), its ``msgid`` the English. When
the English of a piece changes, :func:`update` keeps the old translation but marks it *fuzzy* (with the old
English beside it), and a new piece arrives untranslated, so nothing drifts silently.
``book.po`` holds the book's title and the captions of its table of contents; ``editions.po`` the texts the Colab
and student editions add around a chapter; ``glued.po`` the phrases chapters glue into their prose (how a run
ended, what ran); ``sphinx.po`` and ``booktheme.po`` the website theme's own labels.

From the catalogs come the translated editions: a notebook with its Markdown cells translated
(:func:`translate_notebook`, used by the Colab edition and the exercise editions), and the source folder of the
translated website (:func:`write_site`), made from the notebooks the English build already executed, so the
translated site shows the same run and never executes a notebook again. A piece without a translation keeps its
English there. (Sphinx's own route, ``-D language=ko`` with ``locale_dirs``, was tried on a chapter and left: it
parses each translated paragraph outside the notebook it belongs to, so every ``{glue:text}`` value in it comes
out empty, and it would translate the website only, not the notebooks.)

Usage (``make locale``, ``make book``): ``python -m dldna.book.i18n update|status|translate|site [--lang ko]``.
"""

from __future__ import annotations

import argparse
import ast
import copy
import datetime
import io
import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, unescape, write_po

from dldna.book.segments import Segment, has_prose, located_segments, translate_markdown
from dldna.book.sentences import templates, translate_code, translate_phrase, translate_shown

LOCALE = Path("locale")
LANGUAGE = "ko"
BOOK_CATALOG = "book"
"""The catalog of the book's title and table-of-contents captions."""
EDITIONS_CATALOG = "editions"
"""The catalog of the texts the editions add around a chapter: the Colab edition's notes and titles, the
student edition's prompt for a written answer (kept by hand)."""
GLUED_CATALOG = "glued"
"""The catalog of the phrases chapters glue into their prose (``"diverged at step 12"``), as templates whose fields
the run fills in (kept by hand): :func:`translate_glued`."""
THEME_CATALOGS = ("sphinx", "booktheme")
"""The website theme's own labels, kept by hand: Sphinx's and the pydata theme's (``sphinx``) and the book
theme's (``booktheme``); the translated site uses them before the theme's own translations."""
EXECUTED = Path("_build") / "jupyter_execute"
SITE_LOCALE = "_locale"
GLUE_PREFIX = "application/papermill.record/"


@dataclass(frozen=True)
class Page:
    """A page of the book: its name in the table of contents (``chapters/optimizers``) and its source file."""

    name: str
    source: Path

    @property
    def is_notebook(self) -> bool:
        return self.source.suffix == ".ipynb"


@dataclass(frozen=True)
class Coverage:
    """How much of one catalog is translated: ``total`` entries, of which ``translated`` are done, ``fuzzy``
    need a look because their English changed, and ``missing`` have no translation (or no entry yet)."""

    catalog: str
    total: int
    translated: int
    fuzzy: int
    missing: int

    @property
    def complete(self) -> bool:
        return self.total == self.translated


def _config(root: Path) -> dict[str, Any]:
    return yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))


def _toc(root: Path) -> dict[str, Any]:
    return yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))


def _toc_values(node: Any, key: str) -> Iterator[str]:
    """Every value of ``key`` (``file``, ``caption``) in the table of contents, depth first."""
    if isinstance(node, dict):
        if key in node:
            yield node[key]
        for value in node.values():
            yield from _toc_values(value, key)
    elif isinstance(node, list):
        for item in node:
            yield from _toc_values(item, key)


def pages(root: Path) -> list[Page]:
    """Every page of the book in reading order (the table of contents), with its source file."""
    toc = _toc(root)
    found = []
    for name in [toc["root"], *_toc_values(toc, "file")]:
        source = next((root / f"{name}{suffix}" for suffix in (".ipynb", ".md") if (root / f"{name}{suffix}").is_file()), None)
        if source is None:
            raise ValueError(f"{name} is in _toc.yml but neither {name}.ipynb nor {name}.md exists")
        found.append(Page(name, source))
    return found


def languages(root: Path) -> list[str]:
    """The languages the book has catalogs for (the folders of ``locale/`` with an ``LC_MESSAGES``)."""
    return sorted(path.parent.name for path in (root / LOCALE).glob("*/LC_MESSAGES") if path.is_dir())


def site_source(lang: str) -> Path:
    """Where the source folder of the website in ``lang`` is written (relative to the repository)."""
    return Path("_build") / lang / "source"


def myst_extensions(root: Path) -> tuple[str, ...]:
    """The MyST extensions the book enables, which decide how its Markdown is split into pieces."""
    return tuple(sorted(_config(root).get("parse", {}).get("myst_enable_extensions", [])))


def catalog_path(root: Path, lang: str, name: str) -> Path:
    """Where the catalog ``name`` (a page's name, ``book``, ``editions``, ...) of language ``lang`` lives."""
    return root / LOCALE / lang / "LC_MESSAGES" / f"{name}.po"


SENTENCE = "sentence the code shows"
"""The kind of a catalog entry that is a sentence shown by a code cell (a claim), not Markdown."""


def _cell_segments(cell: dict[str, Any], extensions: tuple[str, ...]) -> list[Segment]:
    """The translatable pieces of one notebook cell: a Markdown cell's pieces, a code cell's shown sentences."""
    source = "".join(cell["source"])
    if cell["cell_type"] == "markdown":
        return [segment for _, segment in located_segments(source, extensions)]
    if cell["cell_type"] == "code":
        return [Segment(template, SENTENCE) for template in templates(source) if has_prose(template)]
    return []


def page_segments(root: Path, page: Page) -> list[tuple[int, Segment]]:
    """Every translatable piece of ``page`` with where it is: the number of its notebook cell (1 for the first)
    or, on a Markdown page, the line its block starts on."""
    extensions = myst_extensions(root)
    try:
        if not page.is_notebook:
            return located_segments(page.source.read_text(encoding="utf-8"), extensions)
        notebook = json.loads(page.source.read_text(encoding="utf-8"))
        return [(index + 1, segment) for index, cell in enumerate(notebook["cells"]) for segment in _cell_segments(cell, extensions)]
    except ValueError as error:
        raise ValueError(f"{page.source.relative_to(root)}: {error}") from None


def where(root: Path, page: Page, position: int) -> str:
    """A piece's place as a translator finds it: ``chapters/optimizers.ipynb, cell 12`` or ``intro.md, line 5``."""
    return f"{page.source.relative_to(root).as_posix()}, {'cell' if page.is_notebook else 'line'} {position}"


def _new_catalog(root: Path, lang: str, name: str, description: str) -> Catalog:
    config = _config(root)
    now = datetime.datetime.now(datetime.timezone.utc).replace(second=0, microsecond=0)
    return Catalog(
        locale=lang,
        domain=name,
        header_comment=f"# {description}\n# Translate each msgstr; see README.md, \"Languages\", and locale/{lang}/glossary.csv.",
        project="dldna",
        version="book",
        copyright_holder=config.get("author", ""),
        msgid_bugs_address=f"{config['repository']['url']}/issues",
        creation_date=now,
        revision_date=now,
        last_translator="The dldna translators",
        language_team=lang,
        fuzzy=False,
    )


def _add(catalog: Catalog, text: str, location: tuple[str, int], comment: str) -> None:
    message = catalog.add(text, locations=[location], auto_comments=[comment])
    message.flags.difference_update({"python-format", "python-brace-format"})
    if len(message.auto_comments) > 1:
        message.auto_comments = sorted(set(message.auto_comments))


def template(root: Path, lang: str, name: str) -> Catalog:
    """A fresh catalog (no translations) of everything to translate in ``name``: a page or ``book``."""
    if name == BOOK_CATALOG:
        catalog = _new_catalog(root, lang, name, "The book's title and the captions of its table of contents.")
        _add(catalog, _config(root)["title"], ("_config.yml", None), "title")
        for caption in _toc_values(_toc(root), "caption"):
            _add(catalog, caption, ("_toc.yml", None), "caption")
        return catalog
    page = next((page for page in pages(root) if page.name == name), None)
    if page is None:
        raise ValueError(f"{name!r} is not a page of the book (_toc.yml) nor the {BOOK_CATALOG!r} catalog")
    relative = page.source.relative_to(root).as_posix()
    catalog = _new_catalog(root, lang, name, f"The text of {relative}, one entry per paragraph, heading, list item or table cell.")
    for position, segment in page_segments(root, page):
        _add(catalog, segment.text, (relative, position), segment.kind)
    return catalog


def read_catalog(path: Path) -> Catalog:
    """The catalog in the ``.po`` file ``path``, with the English a fuzzy entry was translated from (its
    ``#| msgid`` lines, which Babel reads as comments) as the entry's ``previous_id``."""
    with path.open("rb") as handle:
        catalog = read_po(handle, abort_invalid=True)
    for message in catalog:
        previous = " ".join(comment[1:].strip() for comment in message.user_comments if comment.startswith("|"))
        if previous.startswith('msgid "'):  # written wrapped as plain text, so the pieces join with spaces
            message.previous_id = [unescape(previous.removeprefix("msgid "))]
            message.user_comments = [comment for comment in message.user_comments if not comment.startswith("|")]
    return catalog


def catalog_text(catalog: Catalog) -> str:
    """``catalog`` as the text of a ``.po`` file: one line per message (no wrapping), so that a change to one
    paragraph is a change to one line, and without entries no longer in the English."""
    buffer = io.BytesIO()
    write_po(buffer, catalog, width=0, include_previous=True, ignore_obsolete=True, sort_output=False)
    return buffer.getvalue().decode("utf-8")


def update(root: Path, lang: str = LANGUAGE) -> dict[str, Coverage]:
    """Bring every page's catalog and the book catalog of ``lang`` up to date with the English: new pieces are
    added untranslated, changed ones keep their old translation marked fuzzy, removed ones are dropped.
    Writes only the files whose text changes; returns each catalog's coverage."""
    report = {}
    for name in [page.name for page in pages(root)] + [BOOK_CATALOG]:
        path = catalog_path(root, lang, name)
        fresh = template(root, lang, name)
        if path.is_file():
            catalog = read_catalog(path)
            previous = {message.id: message.previous_id for message in catalog if message.previous_id}
            catalog.update(fresh, update_creation_date=False)
            for message in catalog:
                if message.fuzzy and not message.previous_id and message.id in previous:
                    message.previous_id = previous[message.id]
        else:
            catalog = fresh
        text = catalog_text(catalog)
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        report[name] = coverage(root, lang, name)
    return report


def is_translated(message: Any) -> bool:
    """Does a catalog entry have a translation that is not marked fuzzy?"""
    return bool(message.id) and bool(message.string) and not message.fuzzy


def translations(root: Path, lang: str, name: str) -> dict[str, str]:
    """The finished translations of catalog ``name``: English key to translation (fuzzy entries left out)."""
    path = catalog_path(root, lang, name)
    if not path.is_file():
        return {}
    return {message.id: message.string for message in read_catalog(path) if is_translated(message)}


def coverage(root: Path, lang: str, name: str) -> Coverage:
    """How much of catalog ``name`` is translated, measured against the current English (a piece with no entry
    yet counts as missing); hand-kept catalogs are measured against their own entries."""
    path = catalog_path(root, lang, name)
    catalog = read_catalog(path) if path.is_file() else Catalog(locale=lang)
    entries = {message.id: message for message in catalog if message.id}
    wanted = [message.id for message in template(root, lang, name) if message.id] if _is_extracted(root, name) else list(entries)
    translated = sum(1 for key in wanted if key in entries and is_translated(entries[key]))
    fuzzy = sum(1 for key in wanted if key in entries and entries[key].string and entries[key].fuzzy)
    return Coverage(name, len(wanted), translated, fuzzy, len(wanted) - translated - fuzzy)


def _is_extracted(root: Path, name: str) -> bool:
    return name == BOOK_CATALOG or any(page.name == name for page in pages(root))


def untranslated(root: Path, lang: str, page: Page) -> list[str]:
    """One line per piece of ``page`` without a finished translation, naming where it is and what it says."""
    path = catalog_path(root, lang, page.name)
    entries = {message.id: message for message in read_catalog(path) if message.id} if path.is_file() else {}
    problems = []
    for position, segment in page_segments(root, page):
        message = entries.get(segment.text)
        if message is None or not message.string:
            problems.append(f"{where(root, page, position)} ({segment.kind}): no translation of {_excerpt(segment.text)}")
        elif message.fuzzy:
            problems.append(f"{where(root, page, position)} ({segment.kind}): the English changed; check and unmark the "
                            f"fuzzy translation of {_excerpt(segment.text)}")
    return problems


def _excerpt(text: str, width: int = 90) -> str:
    return repr(text if len(text) <= width else text[: width - 1] + "…")


def lookup(table: dict[str, str]) -> Callable[[Segment], str | None]:
    """The translation of a piece from ``table`` (English key to translation), ``None`` when there is none."""
    return lambda segment: table.get(segment.text)


def translate_notebook(notebook: dict[str, Any], table: dict[str, str], extensions: tuple[str, ...]) -> dict[str, Any]:
    """A copy of ``notebook`` (nbformat JSON) translated with ``table``: its Markdown cells, and the sentences its
    code shows, in the code and in the outputs of a notebook that ran. Everything else (the rest of the code,
    metadata, cell ids) is left as it is, so graders and editions see the same notebook."""
    result = copy.deepcopy(notebook)
    for cell in result["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            translated = translate_markdown(source, lookup(table), extensions)
        elif cell["cell_type"] == "code":
            translated = translate_code(source, table.get)
            pairs = [(template, table[template]) for template in templates(source) if template in table]
            if pairs:
                cell["outputs"] = translate_shown(cell.get("outputs", []), pairs)
        else:
            continue
        if translated != source:
            cell["source"] = translated.splitlines(keepends=True)
    return result


def interface_text(root: Path, lang: str, catalog: str, english: str) -> str:
    """The translation of one interface text (a label, a note) from the hand-kept catalog ``catalog``. Raises
    ``ValueError`` naming the text and the file when it is missing or fuzzy: an edition must not mix languages
    in the words it adds itself."""
    table = translations(root, lang, catalog)
    if english not in table:
        path = catalog_path(root, lang, catalog).relative_to(root)
        raise ValueError(f"{path} has no finished translation of {_excerpt(english)}: add it (msgid is the English)")
    return table[english]


def book_title(root: Path, lang: str) -> str:
    """The book's title in ``lang`` (the English one until it is translated)."""
    title = _config(root)["title"]
    return translations(root, lang, BOOK_CATALOG).get(title, title)


def restore_glue(notebook: dict[str, Any], glue: dict[str, Any]) -> dict[str, Any]:
    """``notebook`` (as executed by the English build, which moved the values glued without display out of the
    outputs and into ``<page>.glue.json``) with those values put back as outputs, so that a build that does
    not execute it finds every ``{glue:text}`` value again."""
    result = copy.deepcopy(notebook)
    present = {output.get("metadata", {}).get("scrapbook", {}).get("name") for cell in result["cells"] for output in cell.get("outputs", [])}
    missing = [(name, output) for name, output in glue.items() if name not in present]
    if not missing:
        return result
    holder = next((cell for cell in result["cells"] if cell["cell_type"] == "code"), None)
    if holder is None:
        raise ValueError("a notebook with glued values has no code cell to hold them")
    for name, output in missing:
        holder["outputs"].append({
            "output_type": "display_data",
            "metadata": {**output.get("metadata", {}), "scrapbook": {"name": name, "mime_prefix": GLUE_PREFIX}},
            "data": {GLUE_PREFIX + mime: value for mime, value in output["data"].items()},
        })
    return result


def translate_glued(notebook: dict[str, Any], table: dict[str, str]) -> dict[str, Any]:
    """``notebook`` (executed, its glued values in its outputs) with every glued text value translated through
    ``table``, the templates of :data:`GLUED_CATALOG` (:func:`~dldna.book.sentences.translate_phrase`): the phrases
    a translated paragraph quotes then read in its language. Numbers and names pass through unchanged."""
    result = copy.deepcopy(notebook)
    key = GLUE_PREFIX + "text/plain"
    for cell in result["cells"]:
        for output in cell.get("outputs", []):
            text = output.get("data", {}).get(key)
            if not output.get("metadata", {}).get("scrapbook") or not isinstance(text, str):
                continue
            quoted = len(text) >= 2 and text[0] == text[-1] and text[0] in "'\""  # a string's repr, as glue stores it
            value = ast.literal_eval(text) if quoted else text
            if isinstance(value, str):
                translated = translate_phrase(value, table)
                output["data"][key] = repr(translated) if quoted else translated
    return result


def _translated_toc(node: Any, captions: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {key: captions.get(value, value) if key == "caption" else _translated_toc(value, captions) for key, value in node.items()}
    if isinstance(node, list):
        return [_translated_toc(item, captions) for item in node]
    return node


def _shared_paths(config: dict[str, Any]) -> list[str]:
    """The files and folders outside the pages that the build reads (extensions, static files, bibliographies):
    the translated site's source links to them."""
    sphinx = config.get("sphinx", {})
    paths = list(config.get("bibtex_bibfiles", []))
    paths += list(sphinx.get("local_extensions", {}).values())
    paths += list(sphinx.get("config", {}).get("html_static_path", []))
    return sorted({Path(path).parts[0] for path in paths})


def site_config(root: Path, lang: str) -> dict[str, Any]:
    """The English ``_config.yml`` made into the translated site's: title and language translated, notebooks
    not executed (they arrive executed), and the theme's labels taken from ``locale/<lang>`` first."""
    config = copy.deepcopy(_config(root))
    config["title"] = book_title(root, lang)
    config.setdefault("execute", {})["execute_notebooks"] = "off"
    sphinx_config = config.setdefault("sphinx", {}).setdefault("config", {})
    sphinx_config["language"] = lang
    sphinx_config["locale_dirs"] = [SITE_LOCALE]
    return config


def write_site(root: Path, lang: str = LANGUAGE, executed: Path | None = None, out: Path | None = None) -> list[Path]:
    """Write the source folder of the website in ``lang`` into ``out`` (default ``_build/<lang>/source``): every
    page translated, the notebooks taken as the English build executed them (``executed``, default
    ``_build/jupyter_execute``) with their glued values restored, the configuration and table of contents
    translated, the theme's catalogs compiled, and links to what the build shares with the English one.
    Returns the pages written. Raises ``ValueError`` when an executed notebook is missing."""
    executed = root / EXECUTED if executed is None else executed
    out = root / site_source(lang) if out is None else out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    extensions = myst_extensions(root)
    phrases = translations(root, lang, GLUED_CATALOG)
    written = []
    for page in pages(root):
        table = translations(root, lang, page.name)
        target = out / page.source.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        if page.is_notebook:
            source = executed / f"{page.name}.ipynb"
            if not source.is_file():
                raise ValueError(f"{source} is missing: build the English website first (make book) or pass --executed")
            notebook = json.loads(source.read_text(encoding="utf-8"))
            glue = executed / f"{page.name}.glue.json"
            if glue.is_file():
                notebook = restore_glue(notebook, json.loads(glue.read_text(encoding="utf-8")))
            notebook = translate_glued(notebook, phrases)
            target.write_text(json.dumps(translate_notebook(notebook, table, extensions), ensure_ascii=False), encoding="utf-8")
        else:
            target.write_text(translate_markdown(page.source.read_text(encoding="utf-8"), lookup(table), extensions), encoding="utf-8")
        written.append(target)
    config = site_config(root, lang)
    (out / "_config.yml").write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    toc = _translated_toc(_toc(root), translations(root, lang, BOOK_CATALOG))
    (out / "_toc.yml").write_text(yaml.safe_dump(toc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    for name in _shared_paths(config):
        os.symlink((root / name).resolve(), out / name)
    messages = out / SITE_LOCALE / lang / "LC_MESSAGES"
    messages.mkdir(parents=True)
    for name in THEME_CATALOGS:
        path = catalog_path(root, lang, name)
        if path.is_file():
            with (messages / f"{name}.mo").open("wb") as handle:
                write_mo(handle, read_catalog(path))
    return written


def write_translated_sources(root: Path, lang: str, out: Path) -> list[Path]:
    """Write every notebook of the book with its Markdown in ``lang`` under ``out`` (same folders as the
    repository): the source of the exercise editions (``python -m dldna.exercises.edition --source``)."""
    extensions = myst_extensions(root)
    written = []
    for page in pages(root):
        if not page.is_notebook:
            continue
        notebook = json.loads(page.source.read_text(encoding="utf-8"))
        target = out / page.source.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(translate_notebook(notebook, translations(root, lang, page.name), extensions), indent=1, ensure_ascii=False)
        target.write_text(text + "\n", encoding="utf-8")
        written.append(target)
    return written


def _status_table(report: list[Coverage]) -> str:
    width = max(len(item.catalog) for item in report)
    lines = [f"{'catalog':<{width}}  translated  fuzzy  missing"]
    for item in report:
        lines.append(f"{item.catalog:<{width}}  {item.translated:>4}/{item.total:<5}  {item.fuzzy:>5}  {item.missing:>7}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("update", "status", "translate", "site"),
                        help="update: bring the catalogs up to date with the English; status: coverage per catalog; "
                             "translate: write the translated notebooks (for the exercise editions) to --out; "
                             "site: write the translated website's source folder")
    parser.add_argument("--lang", default=LANGUAGE, help=f"the language (default: {LANGUAGE})")
    parser.add_argument("--root", type=Path, default=Path("."), help="the book's repository (default: here)")
    parser.add_argument("--executed", type=Path, default=None, help=f"site: the English build's executed notebooks (default: {EXECUTED})")
    parser.add_argument("--out", type=Path, default=None, help="translate, site: where to write")
    arguments = parser.parse_args(argv)
    root = arguments.root
    if not (root / "_config.yml").is_file() or not (root / "_toc.yml").is_file():
        parser.error(f"{root.resolve()} is not the book's repository (no _config.yml and _toc.yml): pass --root")
    try:
        if arguments.command == "update":
            print(_status_table(list(update(root, arguments.lang).values())))
        elif arguments.command == "status":
            names = [page.name for page in pages(root)] + [BOOK_CATALOG, EDITIONS_CATALOG, GLUED_CATALOG, *THEME_CATALOGS]
            print(_status_table([coverage(root, arguments.lang, name) for name in names]))
        elif arguments.command == "translate":
            if arguments.out is None:
                parser.error("translate needs --out, the folder to write the translated notebooks to")
            written = write_translated_sources(root, arguments.lang, arguments.out)
            print(f"wrote {len(written)} notebooks in {arguments.lang} to {arguments.out}/")
        else:
            written = write_site(root, arguments.lang, arguments.executed, arguments.out)
            print(f"wrote the {arguments.lang} website's source ({len(written)} pages)")
    except ValueError as error:
        sys.exit(str(error))


if __name__ == "__main__":
    main()
