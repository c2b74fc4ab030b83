"""The Korean website (_build/html/ko/, built by `make book` from the notebooks the English build executed): every
page is there in Korean with the same run, a language switch leads to the same page in the other language, the
pages whose translation is finished show no English prose, and the theme speaks Korean."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest
import yaml

from dldna.book.colab import edition_folder
from dldna.book.i18n import BOOK_CATALOG, GLUED_CATALOG, book_title, translations
from dldna.book.sentences import translate_phrase
from tests.test_book import CHAPTER_PAGES, HTML, PAGES, figures_on_page
from tests.test_i18n import LANGUAGE, PAGES as BOOK_PAGES, TRANSLATED, english_words, hangul_share, kept_in_english
from tests.test_notebooks import ROOT

KOREAN = HTML / LANGUAGE
KOREAN_PAGES = [KOREAN / page.relative_to(HTML) for page in PAGES]
pytestmark = pytest.mark.book


@pytest.fixture(autouse=True, scope="module")
def built_website() -> None:
    if not (KOREAN / "index.html").is_file():
        pytest.fail("the Korean website is not built: run `make book` first")


def korean(page: Path) -> Path:
    return KOREAN / page.relative_to(HTML)


class _Page(HTMLParser):
    """The parts of a page these tests read: the language switch's links, the alternates in the head, the
    Colab and Binder links, the glued values and the prose blocks of the article (their own text, without code,
    outputs, math, citations and the reference list)."""

    BLOCKS = {"p", "li", "h1", "h2", "h3", "h4", "h5", "h6", "th", "td", "dt", "dd", "figcaption", "caption"}
    SKIPPED_TAGS = {"pre", "code", "script", "style", "mjx-container", "button"}
    SKIPPED_CLASSES = {"cell_output", "cell_input", "highlight", "math", "bibtex-citation", "bibliography", "citation",
                       "dldna-trainer", "headerlink"}
    VOID = {"br", "img", "input", "meta", "link", "hr", "wbr", "source", "col", "area", "base", "embed", "param", "track"}

    def __init__(self) -> None:
        super().__init__()
        self.switch: list[str] = []
        self.alternates: dict[str, str] = {}
        self.launch: list[str] = []
        self.glued: list[str] = []
        self.blocks: list[str] = []
        self._stack: list[tuple[str, bool, bool]] = []  # (tag, skips its text, is a prose block)
        self._buffers: list[list[str]] = []
        self._in_article = 0
        self._glue_depth: int | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {key: value or "" for key, value in attrs}
        classes = set(values.get("class", "").split())
        if tag == "a" and "dldna-language-link" in classes:
            self.switch.append(values["href"])
        if tag == "link" and values.get("rel") == "alternate" and values.get("hreflang"):
            self.alternates[values["hreflang"]] = values["href"]
        if tag == "a" and ("colab.research.google.com" in values.get("href", "") or "mybinder.org" in values.get("href", "")):
            self.launch.append(values["href"])
        if tag in self.VOID:
            return
        if tag == "article":
            self._in_article += 1
        skipped = tag in self.SKIPPED_TAGS or bool(classes & self.SKIPPED_CLASSES) or (bool(self._stack) and self._stack[-1][1])
        block = self._in_article > 0 and tag in self.BLOCKS and not skipped
        self._stack.append((tag, skipped, block))
        if block:
            self._buffers.append([])
        if "pasted-text" in classes:
            self._glue_depth = len(self._stack)
            self.glued.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID or not self._stack:
            return
        while self._stack:
            open_tag, _, block = self._stack.pop()
            if self._glue_depth is not None and len(self._stack) < self._glue_depth:
                self._glue_depth = None
            if block:
                text = " ".join("".join(self._buffers.pop()).split())
                if text:
                    self.blocks.append(text)
            if open_tag == "article":
                self._in_article -= 1
            if open_tag == tag:
                break

    def handle_data(self, data: str) -> None:
        if self._glue_depth is not None:
            self.glued[-1] += data.strip()
        if self._stack and not self._stack[-1][1] and self._buffers:
            self._buffers[-1].append(data)


def read(page: Path) -> _Page:
    parsed = _Page()
    parsed.feed(page.read_text(encoding="utf-8"))
    return parsed


def target(page: Path, href: str) -> Path:
    """The file a relative link of ``page`` leads to."""
    return Path(urlparse(urljoin(page.as_uri(), href)).path)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(HTML)))
def test_every_page_switches_to_the_same_page_in_the_other_language(page: Path) -> None:
    english, translated = read(page), read(korean(page))
    assert [target(page, href) for href in english.switch] == [korean(page)], "the English page's switch leads to its Korean page"
    assert [target(korean(page), href) for href in translated.switch] == [page], "the Korean page's switch leads back"
    assert korean(page).is_file()
    assert target(page, english.alternates[LANGUAGE]) == korean(page) and target(korean(page), translated.alternates["en"]) == page


@pytest.mark.parametrize("page", KOREAN_PAGES, ids=lambda p: str(p.relative_to(HTML)))
def test_a_korean_page_is_marked_korean_and_titled_in_korean(page: Path) -> None:
    html = page.read_text(encoding="utf-8")
    assert '<html lang="ko"' in html
    assert re.search(rf"<title>.*{re.escape(book_title(ROOT, LANGUAGE))}</title>", html)
    assert "Traceback (most recent call last)" not in html


@pytest.mark.parametrize("page", CHAPTER_PAGES, ids=lambda p: str(p.relative_to(HTML)))
def test_the_korean_page_shows_the_run_of_the_english_one(page: Path) -> None:
    """Same figures, same glued values (every one of them resolved; phrases translated through the glued
    catalog, numbers as they are) and the same verdicts of the worked solutions: the Korean page is made from
    the notebook the English build executed."""
    english, translated = read(page), read(korean(page))
    assert figures_on_page(korean(page)) == figures_on_page(page)
    phrases = translations(ROOT, LANGUAGE, GLUED_CATALOG)
    assert sorted(translated.glued) == sorted(translate_phrase(value, phrases) for value in english.glued)
    html, english_html = korean(page).read_text(encoding="utf-8"), page.read_text(encoding="utf-8")
    assert html.count("✓ Correct") == english_html.count("✓ Correct")


@pytest.mark.parametrize("page", [p for p in KOREAN_PAGES if "chapters" in p.parts], ids=lambda p: str(p.relative_to(HTML)))
def test_launch_buttons_open_the_korean_colab_edition(page: Path) -> None:
    links = read(page).launch
    assert links, "a chapter page has Colab and Binder buttons"
    for link in links:
        path = re.search(r"(?:blob/main/|urlpath=tree/)([^&?#]+\.ipynb)", link)
        assert path and path.group(1).startswith(f"{edition_folder(LANGUAGE).as_posix()}/chapters/"), link
        assert (ROOT / path.group(1)).is_file(), f"{link} opens a notebook the repository does not have"


FINISHED = [KOREAN / f"{name}.html" for name in TRANSLATED if name in BOOK_PAGES]


@pytest.mark.parametrize("page", FINISHED, ids=lambda p: str(p.relative_to(HTML)))
def test_a_finished_page_shows_no_english_prose(page: Path) -> None:
    allowed = kept_in_english()
    english = []
    for block in read(page).blocks:
        share, words = hangul_share(block, allowed)
        if words and share < 0.5:
            english.append(f"{block[:80]!r}: {words[:6]}")
    assert not english, "paragraphs in English on the Korean page:\n" + "\n".join(english)


@pytest.mark.parametrize("page", CHAPTER_PAGES, ids=lambda p: str(p.relative_to(HTML)))
def test_glued_phrases_read_in_korean(page: Path) -> None:
    """What a run glues into a Korean sentence (how it ended, what ran) is Korean too, not English words."""
    allowed = kept_in_english()
    english = [value for value in read(korean(page)).glued if english_words(value, allowed)]
    assert not english, f"English phrases glued into Korean prose: {english} (add templates to locale/ko/LC_MESSAGES/glued.po)"


def test_the_theme_speaks_korean() -> None:
    html = (KOREAN / "intro.html").read_text(encoding="utf-8")
    for label in ("본문으로 건너뛰기", "이 책에서 검색...", "이 페이지 내려받기", "전체 화면"):
        assert label in html, f"the theme's label {label!r} is missing"
    for label in ("Skip to main content", "Search this book...", "Download this page", "Fullscreen mode"):
        assert label not in html, f"the theme's label {label!r} is left in English"
    sidebar = html[html.index("bd-docs-nav") :]
    captions = translations(ROOT, LANGUAGE, BOOK_CATALOG)
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    assert all(captions[part["caption"]] in sidebar for part in toc["parts"]), "the table of contents' captions are translated"


def test_the_korean_search_strips_particles() -> None:
    language_data = (KOREAN / "_static" / "language_data.js").read_text(encoding="utf-8")
    assert "EnglishStemmer" in language_data and "에서는" in language_data, "the Korean stemmer is in the page's search code"
    index = (KOREAN / "searchindex.js").read_text(encoding="utf-8")
    terms = json.loads(index[index.index("(") + 1 : index.rindex(")")])["terms"]
    assert "학습률" in terms and not any(term.startswith("학습률") and term != "학습률" for term in terms), "words are indexed without their particles"
