"""Translations: the catalogs follow the English, translations keep what must not change, the glossary is
followed, and the translated editions (notebooks, Colab, exercise editions) are the English ones in another
language.

``TRANSLATED`` lists the catalogs whose translation is finished: each must translate every piece of the current
English, none of them fuzzy. A translator adds a page here when its catalog is done; when the book is fully
translated every page is listed (``test_the_list_names_only_pages_of_the_book`` says which are not yet).
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from collections import Counter
from pathlib import Path

import nbformat
import pytest

from dldna.book import i18n
from dldna.book.colab import ENGLISH, FORM_TITLE, OUT, SOURCE, Labels, bibliography_files, colab_notebook, edition_folder
from dldna.book import PLACEHOLDER
from dldna.book.i18n import BOOK_CATALOG, EDITIONS_CATALOG, GLUED_CATALOG, THEME_CATALOGS, catalog_path, read_catalog
from dldna.book.myst import MYST_ONLY, load_references
from dldna.book.segments import located_segments, segments, translate_markdown
from dldna.book.sentences import as_literal, fill, templates, translate_code, translate_phrase
from dldna.exercises._assignment import assignment_checks
from dldna.exercises.edition import WRITTEN_ANSWER_PROMPT, key_notebook, student_notebook, write_edition, written_answer_prompt
from tests.test_notebooks import REPOSITORY, ROOT

LANGUAGE = "ko"
TRANSLATED = [
    BOOK_CATALOG,
    "intro",
    "chapters/exercises/getting_started",
    "chapters/getting_started",
    "chapters/optimizers",
    "chapters/exercises/optimizers",
    "chapters/modern_optimizers",
    "chapters/exercises/modern_optimizers",
    "chapters/landscape",
    "chapters/exercises/landscape",
    "chapters/optimizers_at_scale",
    "chapters/exercises/optimizers_at_scale",
    "chapters/initialization",
    "chapters/exercises/initialization",
    "chapters/normalization",
    "chapters/exercises/normalization",
    "chapters/dynamics",
    "chapters/exercises/dynamics",
]
"""The catalogs of ``LANGUAGE`` whose translation is finished (pages by their name in _toc.yml)."""
LOCALE = ROOT / "locale" / LANGUAGE
GLOSSARY = LOCALE / "glossary.csv"
ENGLISH_TERMS = LOCALE / "english_terms.txt"
ISSUE_TERMS = ["learning rate", "momentum", "batch normalization", "loss landscape", "Hessian", "eigenvalue", "warm-up", "weight decay"]
PAGES = {page.name: page for page in i18n.pages(ROOT)}


def all_catalogs() -> list[Path]:
    return sorted((LOCALE / "LC_MESSAGES").rglob("*.po"))


def catalog_name(path: Path) -> str:
    return path.relative_to(LOCALE / "LC_MESSAGES").with_suffix("").as_posix()


# --- Korean text: what counts as English prose ---------------------------------------------------------------

HANGUL = re.compile(r"[\uac00-\ud7a3]")
CODE_LIKE = re.compile(r"[_./=()\[\]{}<>0-9+*^|\\@#%]|[a-z][A-Z]|^[A-Z][A-Z0-9-]+s?$")
"""A token that is code, a number, an acronym or a name written in code style (``fit``, ``ReLU``, ``GPU``)."""


def kept_in_english() -> set[str]:
    """Words Korean text keeps in English: the glossary's terms kept as they are and the names listed in
    ``english_terms.txt``, lowercased."""
    words = {line.strip().lower() for line in ENGLISH_TERMS.read_text(encoding="utf-8").splitlines() if line.strip() and not line.startswith("#")}
    for row in glossary():
        if not HANGUL.search(row["korean"]):
            words.update(word.lower() for word in re.findall(r"[A-Za-z][A-Za-z-]*", row["korean"]))
    return words


def english_words(text: str, allowed: set[str]) -> list[str]:
    """The English prose words of ``text``: Latin-letter tokens that are not code, acronyms or allowed names."""
    found = []
    for token in text.split():
        word = token.strip(".,;:!?\"'“”‘’()[]*_~")
        if HANGUL.search(word) or not re.search(r"[A-Za-z]{2,}", word) or CODE_LIKE.search(word):
            continue
        if word.lower().removesuffix("'s").removesuffix("’s") not in allowed:
            found.append(word)
    return found


def hangul_share(text: str, allowed: set[str]) -> tuple[float, list[str]]:
    """The share of Korean words among the prose words of ``text``, and its English words."""
    english = english_words(text, allowed)
    korean = sum(1 for token in text.split() if HANGUL.search(token))
    return (korean / (korean + len(english)) if korean + len(english) else 1.0), english


def without_markup(markdown: str) -> str:
    """Markdown text without what is not prose: code spans, roles, math, link targets and HTML tags."""
    for pattern in (r"(`+)(?:(?!\1).)+?\1", r"\{[\w:.-]+\}`[^`]*`", r"\$\$.+?\$\$|\$[^$\n]+\$", r"\]\([^)]*\)", r"<[^>]*>"):
        markdown = re.sub(pattern, " ", markdown, flags=re.S)
    return markdown


def test_hangul_share_tells_prose_from_code_terms() -> None:
    allowed = {"adam"}
    assert hangul_share("Adam은 `torch.optim.Adam`과 같은 결과를 GPU에서 냅니다.", allowed)[0] == 1.0
    share, english = hangul_share("The learning rate matters more than the optimizer.", allowed)
    assert share == 0.0 and "learning" in english
    assert hangul_share("ReLU, SGD, CIFAR-100, dldna.optim, 10^-3", allowed) == (1.0, [])


# --- Segments: what a catalog entry is -----------------------------------------------------------------------

SAMPLE = """(sec-label)=
# A title with {cite:p}`kingma2015adam`

**You will learn**
- why minibatch gradients
  are noisy;
- what `fit` records.

A paragraph with $x^2$ and {glue:text}`acc:.1f`% in it,
wrapped over two lines.

| optimizer | what it adds |
|---|---|
| SGD | the gradient step |
| `x` | 0.1 |

:::{note} A title
:class: dropdown
Body *text*.
:::

```{figure} plot.png
:alt: alt text
The caption.
```

$$
L(w) = \\frac12 w^2
$$

<div class="dldna-trainer">
The trainer appears here.
</div>

```python
x = 1  # a comment
```

```{bibliography}
:filter: docname in docnames
```
"""


def test_segments_are_what_a_reader_sees_as_one_piece() -> None:
    found = segments(SAMPLE)
    assert [(s.kind, s.text) for s in found] == [
        ("heading", "A title with {cite:p}`kingma2015adam`"),
        ("paragraph", "**You will learn**"),
        ("list item", "why minibatch gradients are noisy;"),
        ("list item", "what `fit` records."),
        ("paragraph", "A paragraph with $x^2$ and {glue:text}`acc:.1f`% in it, wrapped over two lines."),
        ("table cell", "optimizer"),
        ("table cell", "what it adds"),
        ("table cell", "SGD"),
        ("table cell", "the gradient step"),
        ("title", "A title"),
        ("paragraph", "Body *text*."),
        ("caption", "The caption."),
        ("html", '<div class="dldna-trainer"> The trainer appears here. </div>'),
    ]
    assert located_segments(SAMPLE)[0][0] == 2, "the heading starts on the second line"


def test_rewrapping_a_paragraph_keeps_its_key_and_changing_a_word_does_not() -> None:
    wrapped = "One paragraph that says\nsomething."
    assert segments(wrapped) == segments("One paragraph that says something.")
    assert segments(wrapped) != segments("One paragraph that says nothing.")


def test_translating_replaces_each_piece_and_leaves_the_rest_as_it_was() -> None:
    translated = translate_markdown(SAMPLE, lambda segment: f"«{segment.text}»")
    assert translated.startswith("(sec-label)=\n# «A title with {cite:p}`kingma2015adam`»\n")
    assert "- «why minibatch gradients are noisy;»\n- «what `fit` records.»" in translated
    assert "| «SGD» | «the gradient step» |" in translated and "| `x` | 0.1 |" in translated and "|---|---|" in translated
    assert ":::{note} «A title»\n:class: dropdown\n«Body *text*.»\n:::" in translated
    assert "```{figure} plot.png\n:alt: alt text\n«The caption.»\n```" in translated
    for kept in ("$$\nL(w) = \\frac12 w^2\n$$", "```python\nx = 1  # a comment\n```", "```{bibliography}\n:filter: docname in docnames\n```"):
        assert kept in translated
    assert [s.text for s in segments(translated)] == [f"«{s.text}»" for s in segments(SAMPLE)], "the translation parses into the same pieces"
    assert translate_markdown(SAMPLE, lambda segment: None) == SAMPLE, "nothing translated: the text is unchanged"


def test_a_directive_of_unknown_content_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"\{mystery\}.*ADMONITIONS or CAPTIONED"):
        segments("```{mystery}\nbody\n```\n")


# --- Sentences the code shows ---------------------------------------------------------------------------------

CLAIMING_CELL = '''loss, scores = 0.4321, {"adam": 0.9}
claim(loss < 1, f"The loss fell to {loss:.2f}, and Adam scored {scores['adam']:.0%}.")
display(Markdown("A {plain} sentence."))
print("not a sentence the book shows")
'''


def test_the_sentences_a_cell_shows_are_keyed_by_their_template() -> None:
    assert templates(CLAIMING_CELL) == ["The loss fell to {loss:.2f}, and Adam scored {scores['adam']:.0%}.", "A {{plain}} sentence."]


def test_a_translated_sentence_runs_and_shows_the_same_values() -> None:
    korean = "손실은 {loss:.2f}까지, Adam은 {scores['adam']:.0%}를 기록했습니다."
    code = translate_code(CLAIMING_CELL, {templates(CLAIMING_CELL)[0]: korean}.get)
    shown: list[str] = []
    exec(code, {"claim": lambda holds, sentence: shown.append(sentence), "display": shown.append, "Markdown": str, "print": lambda *a: None})
    assert shown == ["손실은 0.43까지, Adam은 90%를 기록했습니다.", "A {plain} sentence."]
    assert fill("The loss fell to 0.43, and Adam scored 90%.", templates(CLAIMING_CELL)[0], korean) == shown[0]
    assert fill("Another sentence.", templates(CLAIMING_CELL)[0], korean) is None
    assert eval(as_literal('Quotes " and \\ and {{braces}}'), {}) == 'Quotes " and \\ and {braces}'


def test_a_field_may_hold_any_expression() -> None:
    template = "The order {'changed' if a[:2] != b[:2] else 'held'} at {d['k']:.1f}."
    korean = "순서는 {'changed' if a[:2] != b[:2] else 'held'}, 값은 {d['k']:.1f}입니다."
    shown = eval(as_literal(korean), {"a": [1, 2], "b": [2, 1], "d": {"k": 0.5}})
    assert shown == "순서는 changed, 값은 0.5입니다."
    assert fill("The order changed at 0.5.", template, korean) == shown


def test_a_field_may_show_nothing() -> None:
    template = "After {n} epoch{'s' * (n != 1)}, the order held."
    korean = "{n}에폭 뒤에도 순서는 유지됐습니다."
    assert fill("After 1 epoch, the order held.", template, korean) == "1에폭 뒤에도 순서는 유지됐습니다."
    assert fill("After 2 epochs, the order held.", template, korean) == "2에폭 뒤에도 순서는 유지됐습니다."


PHRASES = {
    "batch {small}: {small_size}; batch {large}: {large_size}": "배치 {small}: {small_size}; 배치 {large}: {large_size}",
    "{train} training images, {epochs}": "훈련 이미지 {train}장, {epochs}",
    "all {count}": "전체 {count}",
    "{count} epochs": "{count}에폭",
    "diverged at step {step}": "스텝 {step}에서의 발산",
    "none": "없음",
}


def test_a_glued_phrase_is_translated_through_the_first_template_that_matches_it_whole() -> None:
    assert translate_phrase("diverged at step 12", PHRASES) == "스텝 12에서의 발산"
    assert translate_phrase("all 60,000 training images, 4 epochs", PHRASES) == "훈련 이미지 전체 60,000장, 4에폭"
    nested = "batch 32: all 600 training images, 2 epochs; batch 1000: 500 training images, 8 epochs"
    assert translate_phrase(nested, PHRASES) == "배치 32: 훈련 이미지 전체 600장, 2에폭; 배치 1000: 훈련 이미지 500장, 8에폭"
    assert translate_phrase("none, diverged at step 3", PHRASES) == "없음, 스텝 3에서의 발산"  # a list, item by item
    assert translate_phrase("NAdam", PHRASES) == "NAdam" and translate_phrase("0.25", PHRASES) == "0.25"
    assert translate_phrase("diverged at step 3", {"{x}": "{x}!", **PHRASES}) == "스텝 3에서의 발산"  # no literal text: skipped
    with pytest.raises(ValueError, match="field {epoch}"):
        translate_phrase("3 epochs", {"{count} epochs": "{epoch}에폭"})


# --- Catalogs: extracted, updated, measured ------------------------------------------------------------------

NOTEBOOK = {
    "cells": [
        {"cell_type": "markdown", "metadata": {}, "source": ["# A chapter\n", "\n", "The first paragraph.\n"]},
        {"cell_type": "code", "metadata": {}, "execution_count": 1, "source": ["x = 0.5\n", 'claim(x < 1, f"The loss is {x:.1f}.")'],
         "outputs": [{"output_type": "display_data", "metadata": {}, "data": {"text/markdown": "The loss is 0.5.", "text/plain": "<Markdown>"}}]},
        {"cell_type": "markdown", "metadata": {}, "source": ["The learning rate sets the step size."]},
    ],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    "nbformat": 4,
    "nbformat_minor": 5,
}


@pytest.fixture
def book(tmp_path: Path) -> Path:
    """A book of two pages: an intro and a chapter notebook."""
    (tmp_path / "_config.yml").write_text(
        f"title: A Small Book\nauthor: Someone\nrepository:\n  url: {REPOSITORY}\n"
        "parse:\n  myst_enable_extensions: [dollarmath, colon_fence]\n", encoding="utf-8")
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: intro\nparts:\n  - caption: Part one\n    chapters:\n      - file: chapters/a\n", encoding="utf-8")
    (tmp_path / "intro.md").write_text("# A Small Book\n\nAn introduction.\n", encoding="utf-8")
    (tmp_path / "chapters").mkdir()
    (tmp_path / "chapters" / "a.ipynb").write_text(json.dumps(NOTEBOOK), encoding="utf-8")
    return tmp_path


def set_translation(root: Path, name: str, english: str, text: str) -> None:
    path = catalog_path(root, LANGUAGE, name)
    catalog = read_catalog(path)
    catalog[english].string = text
    catalog[english].flags.discard("fuzzy")
    path.write_text(i18n.catalog_text(catalog), encoding="utf-8")


def test_update_keeps_translations_marks_changed_english_fuzzy_and_drops_removed(book: Path) -> None:
    report = i18n.update(book, LANGUAGE)
    assert report["chapters/a"] == i18n.Coverage("chapters/a", 4, 0, 0, 4)
    assert report[BOOK_CATALOG].total == 2, "the title and the part caption"
    set_translation(book, "chapters/a", "The learning rate sets the step size.", "학습률은 스텝의 크기를 정합니다.")
    set_translation(book, "chapters/a", "The first paragraph.", "첫 문단입니다.")
    path = catalog_path(book, LANGUAGE, "chapters/a")
    before = path.read_text(encoding="utf-8")
    i18n.update(book, LANGUAGE)
    assert path.read_text(encoding="utf-8") == before, "an update with nothing new changes nothing"

    notebook = json.loads((book / "chapters" / "a.ipynb").read_text(encoding="utf-8"))
    notebook["cells"][2]["source"] = ["The learning rate sets the size of each step."]
    notebook["cells"][0]["source"] = ["# A chapter\n"]
    (book / "chapters" / "a.ipynb").write_text(json.dumps(notebook), encoding="utf-8")
    report = i18n.update(book, LANGUAGE)
    assert report["chapters/a"] == i18n.Coverage("chapters/a", 3, 0, 1, 2)
    message = read_catalog(path)["The learning rate sets the size of each step."]
    assert message.fuzzy and message.string == "학습률은 스텝의 크기를 정합니다."
    assert message.previous_id == ["The learning rate sets the step size."], "the old English is shown beside it"
    changed = path.read_text(encoding="utf-8")
    i18n.update(book, LANGUAGE)
    assert path.read_text(encoding="utf-8") == changed, "a second update keeps the fuzzy entry and its old English"
    assert "The first paragraph." not in path.read_text(encoding="utf-8"), "a removed paragraph leaves the catalog"
    problems = i18n.untranslated(book, LANGUAGE, i18n.pages(book)[1])
    assert problems == [
        "chapters/a.ipynb, cell 1 (heading): no translation of 'A chapter'",
        "chapters/a.ipynb, cell 2 (sentence the code shows): no translation of 'The loss is {x:.1f}.'",
        "chapters/a.ipynb, cell 3 (paragraph): the English changed; check and unmark the fuzzy translation of "
        "'The learning rate sets the size of each step.'",
    ]


def test_a_translated_notebook_differs_only_in_its_text(book: Path) -> None:
    i18n.update(book, LANGUAGE)
    set_translation(book, "chapters/a", "The first paragraph.", "첫 문단입니다.")
    set_translation(book, "chapters/a", "The loss is {x:.1f}.", "손실은 {x:.1f}입니다.")
    notebook = json.loads((book / "chapters" / "a.ipynb").read_text(encoding="utf-8"))
    translated = i18n.translate_notebook(notebook, i18n.translations(book, LANGUAGE, "chapters/a"), i18n.myst_extensions(book))
    assert "".join(translated["cells"][0]["source"]) == "# A chapter\n\n첫 문단입니다.\n"
    assert "".join(translated["cells"][1]["source"]) == 'x = 0.5\nclaim(x < 1, f"손실은 {x:.1f}입니다.")'
    assert translated["cells"][1]["outputs"][0]["data"] == {"text/markdown": "손실은 0.5입니다.", "text/plain": "<Markdown>"}
    assert translated["cells"][2] == notebook["cells"][2], "untranslated text stays as it is"


def test_the_tools_refuse_bad_input_in_one_sentence(book: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match="'chapters/b' is not a page of the book"):
        i18n.template(book, LANGUAGE, "chapters/b")
    with pytest.raises(ValueError, match=r"has no finished translation of 'Note'"):
        i18n.interface_text(book, LANGUAGE, EDITIONS_CATALOG, "Note")
    with pytest.raises(ValueError, match=r"jupyter_execute/chapters/a.ipynb is missing: build the English website first"):
        i18n.write_site(book, LANGUAGE)
    with pytest.raises(SystemExit):
        i18n.main(["status", "--root", str(book / "chapters")])
    assert "is not the book's repository" in capsys.readouterr().err


def test_the_site_source_restores_glued_values_and_translates_config(book: Path) -> None:
    i18n.update(book, LANGUAGE)
    set_translation(book, BOOK_CATALOG, "A Small Book", "작은 책")
    set_translation(book, BOOK_CATALOG, "Part one", "첫째 부")
    executed = book / "executed"
    notebook = json.loads((book / "chapters" / "a.ipynb").read_text(encoding="utf-8"))
    (executed / "chapters").mkdir(parents=True)
    (executed / "chapters" / "a.ipynb").write_text(json.dumps(notebook), encoding="utf-8")
    glued = {"acc": {"output_type": "display_data", "metadata": {"scrapbook": {"name": "acc", "mime_prefix": i18n.GLUE_PREFIX}},
                     "data": {"text/plain": "0.9"}}}
    (executed / "chapters" / "a.glue.json").write_text(json.dumps(glued), encoding="utf-8")
    i18n.write_site(book, LANGUAGE, executed, book / "site")
    written = json.loads((book / "site" / "chapters" / "a.ipynb").read_text(encoding="utf-8"))
    assert written["cells"][1]["outputs"][-1] == {"output_type": "display_data", "metadata": glued["acc"]["metadata"],
                                                  "data": {i18n.GLUE_PREFIX + "text/plain": "0.9"}}
    # A glued phrase is translated through the glued catalog, a number is left alone.
    glued["how"] = {"output_type": "display_data", "metadata": {"scrapbook": {"name": "how", "mime_prefix": i18n.GLUE_PREFIX}},
                    "data": {"text/plain": "'diverged at step 7'"}}
    (executed / "chapters" / "a.glue.json").write_text(json.dumps(glued), encoding="utf-8")
    catalog_path(book, LANGUAGE, GLUED_CATALOG).write_text(
        'msgid ""\nmsgstr ""\n"Language: ko\\n"\n\nmsgid "diverged at step {step}"\nmsgstr "스텝 {step}에서의 발산"\n', encoding="utf-8")
    i18n.write_site(book, LANGUAGE, executed, book / "site")
    outputs = json.loads((book / "site" / "chapters" / "a.ipynb").read_text(encoding="utf-8"))["cells"][1]["outputs"]
    shown = {output["metadata"]["scrapbook"]["name"]: output["data"][i18n.GLUE_PREFIX + "text/plain"] for output in outputs[-2:]}
    assert shown == {"acc": "0.9", "how": "'스텝 7에서의 발산'"}
    assert "title: 작은 책" in (book / "site" / "_config.yml").read_text(encoding="utf-8")
    assert "execute_notebooks: 'off'" in (book / "site" / "_config.yml").read_text(encoding="utf-8")
    assert "caption: 첫째 부" in (book / "site" / "_toc.yml").read_text(encoding="utf-8")


# --- The book's catalogs -------------------------------------------------------------------------------------


def test_the_list_names_only_pages_of_the_book() -> None:
    unknown = [name for name in TRANSLATED if name != BOOK_CATALOG and name not in PAGES]
    assert not unknown, f"TRANSLATED names catalogs that are not pages of _toc.yml: {unknown}"
    assert len(TRANSLATED) == len(set(TRANSLATED))


@pytest.mark.parametrize("name", TRANSLATED)
def test_a_finished_translation_translates_every_piece_of_the_current_english(name: str) -> None:
    if name == BOOK_CATALOG:
        coverage = i18n.coverage(ROOT, LANGUAGE, name)
        assert coverage.complete, f"{catalog_path(ROOT, LANGUAGE, name).relative_to(ROOT)}: {coverage} (run `make locale`, then translate)"
        return
    problems = i18n.untranslated(ROOT, LANGUAGE, PAGES[name])
    assert not problems, "run `make locale`, then translate in " + str(catalog_path(ROOT, LANGUAGE, name).relative_to(ROOT)) + ":\n" + "\n".join(problems)


MARKUP = (r"\{[\w:.-]+\}`[^`]*`", r"\$\$.+?\$\$|(?<!\$)\$[^$\n]+\$(?!\$)", r"(`+)(?:(?!\1).)+?\1", r"\]\(([^)]*)\)", r"</?[A-Za-z][^>]*>",
          r"%\(\w+\)s")
"""Roles with their content (glue keys, citations, references), inline and display math, code spans, link
targets, HTML tags, and the theme's %-placeholders."""
FIELD = r"(?<!\{)\{(?!\{)[^{}]+\}(?!\})"
"""A shown sentence's f-string field (in a theme label, a field the theme fills in English may be dropped)."""


def _markers(text: str, fields: bool = True) -> Counter[str]:
    """What a translation must carry over unchanged: markup and, with ``fields``, the fields of a sentence."""
    found: Counter[str] = Counter()
    for pattern in MARKUP + ((FIELD,) if fields else ()):
        for match in re.finditer(pattern, text, flags=re.S):
            found[match.group(0)] += 1
    return found


@pytest.mark.parametrize("path", all_catalogs(), ids=catalog_name)
def test_translations_keep_roles_math_code_glue_keys_and_links(path: Path) -> None:
    broken = []
    fields = catalog_name(path) not in THEME_CATALOGS
    for message in read_catalog(path):
        if message.id and message.string and _markers(message.id, fields) != _markers(message.string, fields):
            lost = _markers(message.id, fields) - _markers(message.string, fields)
            added = _markers(message.string, fields) - _markers(message.id, fields)
            broken.append(f"{message.id[:70]!r}: lost {sorted(lost)}, added {sorted(added)}")
    assert not broken, f"{path.relative_to(ROOT)}: translations that change markup:\n" + "\n".join(broken)


@pytest.mark.parametrize("path", all_catalogs(), ids=catalog_name)
def test_translations_are_korean_prose(path: Path) -> None:
    """A translation is written in Korean: code, math, names and the glossary's English terms aside."""
    allowed = kept_in_english()
    english = []
    for message in read_catalog(path):
        if message.id and message.string:
            share, words = hangul_share(without_markup(message.string), allowed)
            if words and share < 0.5:
                english.append(f"{message.string[:70]!r}: English words {words[:6]}")
    assert not english, f"{path.relative_to(ROOT)}: translations that read as English (or add the names to {ENGLISH_TERMS.name}):\n" + "\n".join(english)


def glossary() -> list[dict[str, str]]:
    return list(csv.DictReader(GLOSSARY.open(encoding="utf-8")))


def test_the_glossary_has_every_term_once_with_a_definition() -> None:
    rows = glossary()
    assert rows and list(rows[0]) == ["english", "korean", "definition"]
    assert all(row["english"].strip() and row["korean"].strip() and len(row["definition"].strip()) > 10 for row in rows)
    assert all(HANGUL.search(row["definition"]) for row in rows), "definitions are written in Korean"
    terms = [row["english"].lower() for row in rows]
    assert len(terms) == len(set(terms)), "a term appears twice"
    assert set(term.lower() for term in ISSUE_TERMS) <= set(terms)


def _term_pattern(term: str) -> re.Pattern[str]:
    words = [re.escape(word) for word in re.split(r"[\s-]+", term)]
    return re.compile(r"\b" + r"[\s-]+".join(words) + r"(?:s|es)?\b", re.I)


def test_glossary_terms_are_translated_as_the_glossary_says() -> None:
    """Wherever the English of a finished translation uses a glossary term, the translation uses the term's
    Korean (longer terms first: "gradient descent" is 경사 하강법, not "gradient" plus "descent")."""
    rows = sorted(glossary(), key=lambda row: len(row["english"]), reverse=True)
    patterns = [(row, _term_pattern(row["english"])) for row in rows]
    inconsistent = []
    for name in TRANSLATED:
        for message in read_catalog(catalog_path(ROOT, LANGUAGE, name)):
            if not (message.id and message.string):
                continue
            english = without_markup(message.id)
            for row, pattern in patterns:
                if pattern.search(english):
                    english = pattern.sub(" ", english)
                    if row["korean"] not in message.string:
                        inconsistent.append(f"{name}: {row['english']!r} is {row['korean']!r}, not used in {message.string[:60]!r}")
    assert not inconsistent, "\n".join(inconsistent)


@pytest.mark.parametrize("name", [EDITIONS_CATALOG, GLUED_CATALOG, *THEME_CATALOGS])
def test_hand_kept_catalogs_are_complete(name: str) -> None:
    catalog = read_catalog(catalog_path(ROOT, LANGUAGE, name))
    assert len(catalog) > 3
    assert all(i18n.is_translated(message) for message in catalog if message.id), f"{name}.po has untranslated or fuzzy entries"


# --- Editions in Korean: notebooks, exercises, Colab ---------------------------------------------------------

EXERCISES = "chapters/exercises/getting_started"


def korean_notebook(name: str) -> nbformat.NotebookNode:
    notebook = json.loads(PAGES[name].source.read_text(encoding="utf-8"))
    translated = i18n.translate_notebook(notebook, i18n.translations(ROOT, LANGUAGE, name), i18n.myst_extensions(ROOT))
    return nbformat.reads(json.dumps(translated), as_version=4)


def test_a_korean_exercise_notebook_is_the_english_one_with_korean_text() -> None:
    english = nbformat.read(PAGES[EXERCISES].source, as_version=4)
    korean = korean_notebook(EXERCISES)
    assert [cell.get("id") for cell in korean.cells] == [cell.get("id") for cell in english.cells]
    assert [cell.source for cell in korean.cells if cell.cell_type == "code"] == [cell.source for cell in english.cells if cell.cell_type == "code"]
    assert [cell.metadata for cell in korean.cells] == [cell.metadata for cell in english.cells]
    assert assignment_checks(korean) == assignment_checks(english), "the grader finds the same checks in the same cells"
    markdown = "\n".join(cell.source for cell in korean.cells if cell.cell_type == "markdown")
    assert "연습문제 start.1" in markdown and "Exercise start.1" not in markdown


def test_student_edition_and_answer_key_of_korean_notebooks(tmp_path: Path) -> None:
    i18n.main(["translate", "--lang", LANGUAGE, "--root", str(ROOT), "--out", str(tmp_path / "ko")])
    write_edition("student", tmp_path / "ko" / "chapters", tmp_path / "student", LANGUAGE)
    write_edition("key", tmp_path / "ko" / "chapters", tmp_path / "key", LANGUAGE)
    korean = korean_notebook(EXERCISES)
    student = nbformat.read(tmp_path / "student" / f"{EXERCISES}.ipynb", as_version=4)
    key = nbformat.read(tmp_path / "key" / f"{EXERCISES}.ipynb", as_version=4)
    assert student == student_notebook(korean, written_answer_prompt(LANGUAGE)) and key == key_notebook(korean)
    assert sum("raise NotImplementedError()" in cell.source for cell in student.cells) == sum(
        cell.cell_type == "code" and "### BEGIN SOLUTION" in cell.source for cell in korean.cells)
    assert assignment_checks(student) == assignment_checks(key) == assignment_checks(korean)
    prompts = [cell.source for cell in student.cells if cell.cell_type == "markdown" and "solution" in cell.metadata.get("tags", [])]
    assert prompts and set(prompts) == {written_answer_prompt(LANGUAGE)} and WRITTEN_ANSWER_PROMPT not in prompts


@pytest.mark.slow
def test_the_grader_grades_korean_notebooks_against_the_english_assignment(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dldna.exercises.autograde import main

    korean = korean_notebook(EXERCISES)
    key = tmp_path / "key" / "getting_started.ipynb"
    student = tmp_path / "student" / "getting_started.ipynb"
    for path, notebook in ((key, key_notebook(korean)), (student, student_notebook(korean))):
        path.parent.mkdir(parents=True)
        nbformat.write(notebook, path)
    assert main([str(key), str(student), "--csv", str(tmp_path / "grades.csv"), "--feedback", str(tmp_path / "feedback")]) == 0
    out = capsys.readouterr().out
    count = len(assignment_checks(korean))
    assert f"{key}: {count}/{count} exercises passed" in out and f"{student}: 0/{count} exercises passed" in out


KOREAN_COLAB = sorted((ROOT / edition_folder(LANGUAGE)).rglob("*.ipynb"))


def test_every_chapter_has_a_korean_colab_notebook() -> None:
    chapters = sorted(path.relative_to(ROOT / SOURCE) for path in (ROOT / SOURCE).rglob("*.ipynb"))
    assert sorted(path.relative_to(ROOT / edition_folder(LANGUAGE) / SOURCE) for path in KOREAN_COLAB) == chapters


@pytest.fixture(scope="module")
def references() -> dict:
    return load_references(bibliography_files(ROOT))


@pytest.mark.parametrize("path", KOREAN_COLAB, ids=lambda p: str(p.relative_to(ROOT / OUT)))
def test_a_korean_colab_notebook_is_the_english_one_in_korean(path: Path, references: dict) -> None:
    chapter = json.loads((ROOT / path.relative_to(ROOT / edition_folder(LANGUAGE))).read_text(encoding="utf-8"))
    page = path.relative_to(ROOT / edition_folder(LANGUAGE)).with_suffix("").as_posix()
    translated = i18n.translate_notebook(chapter, i18n.translations(ROOT, LANGUAGE, page), i18n.myst_extensions(ROOT))
    labels = Labels.translated(ROOT, LANGUAGE)
    english, korean = colab_notebook(chapter, references), colab_notebook(translated, references, labels)

    def code(notebook: dict) -> list[str]:
        """Each code cell without its form title and with its shown sentences blanked; a paragraph's form cell as
        the values it quotes."""
        cells = ["".join(c["source"]).split("\n", 1)[-1] if c["metadata"].get("cellView") == "form" else "".join(c["source"])
                 for c in notebook["cells"] if c["cell_type"] == "code"]
        return [" ".join(sorted(m.group(0) for m in PLACEHOLDER.finditer(cell))) if "show_paragraph(" in cell
                else translate_code(cell, lambda template: "…") for cell in cells]

    assert code(korean) == code(english), "the same code and solutions, and paragraphs quoting the same values"
    markdown = ["".join(cell["source"]) for cell in korean["cells"] if cell["cell_type"] == "markdown"]
    assert not [m.group(0) for text in markdown for m in MYST_ONLY.finditer(text)], "no MyST markup a notebook viewer shows as text"
    assert labels.running_note in markdown and ENGLISH.running_note not in markdown
    forms = ["".join(c["source"]) for c in korean["cells"] if c["metadata"].get("cellView") == "form"]
    assert all(form.startswith((labels.form_title, labels.solution_title)) for form in forms)
    assert not any(FORM_TITLE in form for form in forms)
    if any("## References" in text for text in markdown):
        pytest.fail("the reference list's heading is not translated")


def test_a_translated_page_reads_in_korean_in_colab() -> None:
    path = ROOT / edition_folder(LANGUAGE) / f"{EXERCISES}.ipynb"
    allowed = kept_in_english()
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] == "markdown":
            share, english = hangul_share(without_markup("".join(cell["source"])), allowed)
            assert share >= 0.5, f"English prose in the Korean Colab notebook: {english}"


def test_the_korean_colab_edition_is_made_from_the_catalogs(tmp_path: Path) -> None:
    """A translation changed in the catalog reaches the Korean edition, and only it (`make colab --check` fails)."""
    from dldna.book.colab import stale_files, write

    copy = tmp_path / "book"
    (copy / "chapters" / "exercises").mkdir(parents=True)
    for name in ("_config.yml", "references.bib", f"{EXERCISES}.ipynb"):
        shutil.copy(ROOT / name, copy / name)
    for folder in ("bib", "locale"):
        shutil.copytree(ROOT / folder, copy / folder)
    write(copy)
    assert stale_files(copy) == []
    set_translation(copy, EXERCISES, "Exercises: getting started", "연습문제: 첫걸음")
    assert stale_files(copy) == [f"{edition_folder(LANGUAGE).as_posix()}/{EXERCISES}.ipynb"]
