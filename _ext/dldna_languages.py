"""Sphinx extension: one website in several languages.

The English site is built at the site's root and each translation by a build of its own into a folder of the
site (``ko/``: ``dldna_languages`` maps each language to its folder). This extension, loaded by every one of
those builds, gives each page:

- a language switch in the page header, leading to the same page in every other language, and
  ``<link rel="alternate" hreflang="...">`` entries in its head;
- on a translated page, a Colab button that opens the Colab edition in that language (``colab/<lang>/...``),
  and a Binder button that opens the same notebook;
- in Korean, a search that indexes a word without the particle Korean writes onto it (학습률을, 학습률은 and
  학습률의 are all found by 학습률), and English words stemmed as the English site stems them;
- the book theme's labels from the book's own catalog (``booktheme.po`` in ``locale_dirs``) ahead of the
  translation the theme ships, which lacks some labels and words others oddly; and the texts the theme and
  myst-nb take from the configuration (the search field's, a folded cell's) translated by the book's
  ``sphinx.po``.
"""

from __future__ import annotations

import gettext
import re
from pathlib import Path
from typing import Any

import sphinx.locale
from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.search import SearchLanguage
from sphinx.search.en import SearchEnglish, english_stopwords

from dldna.book.colab import OUT as COLAB_EDITION
from dldna.book.colab import edition_folder

TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC = Path(__file__).resolve().parent / "static"
SWITCH_TEMPLATE = "language-switch.html"
SWITCH_STYLE = "dldna-languages.css"
NAMES = {"en": "English", "ko": "한국어"}
"""Each language's name in its own language: what the switch shows."""
THEME_CATALOG = "booktheme"
FOLD_LABELS = ("nb_code_prompt_show", "nb_code_prompt_hide")
"""myst-nb's labels of a folded cell ("Show code cell source"), translated like the theme's."""


def _language(app: Sphinx) -> str:
    return app.config.language or "en"


def _add_switch_to_header(app: Sphinx, config: Config) -> None:
    """Put the language switch first among the page header's buttons; translate the search field's text and the
    labels of folded cells, which the theme and myst-nb show as given."""
    config.templates_path.append(str(TEMPLATES))
    config.html_static_path.append(str(STATIC))
    options = config.html_theme_options
    if "search_bar_text" in options:
        options["search_bar_text"] = sphinx.locale._(options["search_bar_text"])
    for label in FOLD_LABELS:
        if isinstance(getattr(config, label, None), str):
            setattr(config, label, sphinx.locale._(getattr(config, label)))
    header_end = options.get("article_header_end", ["article-header-buttons.html"])
    header_end = [header_end] if isinstance(header_end, str) else list(header_end)
    if SWITCH_TEMPLATE not in header_end:
        options["article_header_end"] = [SWITCH_TEMPLATE, *header_end]


def _link_languages(app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any) -> None:
    """The same page in every other language, as links relative to this page."""
    folders: dict[str, str] = app.config.dldna_languages
    current = _language(app)
    if current not in folders:
        return
    to_site_root = "../" * (pagename.count("/") + len(Path(folders[current]).parts))
    links = []
    for code, folder in folders.items():
        if code != current:
            url = f"{to_site_root}{folder + '/' if folder else ''}{pagename}{app.builder.link_suffix}"
            links.append({"code": code, "name": NAMES.get(code, code), "url": url})
    context["dldna_language_links"] = links
    context["metatags"] = context.get("metatags", "") + "".join(
        f'\n<link rel="alternate" hreflang="{link["code"]}" href="{link["url"]}" />' for link in links
    )


def _launch_in_language(app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any) -> None:
    """On a translated page, Colab and Binder open the Colab edition in the page's language."""
    current = _language(app)
    if current == "en":
        return
    branch = app.config.html_theme_options.get("repository_branch", "main")
    english_edition = f"/blob/{branch}/{COLAB_EDITION.as_posix()}/"
    translated = edition_folder(current).as_posix()
    for group in context.get("header_buttons", []):
        for button in group.get("buttons", []) if isinstance(group, dict) else []:
            url = button.get("url", "")
            if "colab.research.google.com/github/" in url:
                button["url"] = url.replace(english_edition, f"/blob/{branch}/{translated}/", 1)
            elif "mybinder.org/" in url:
                button["url"] = re.sub(r"(urlpath=tree/|filepath=)", rf"\g<1>{translated}/", url, count=1)


KOREAN_PARTICLES = tuple(sorted(
    "에서는 에서도 에서의 으로는 으로도 으로써 으로서 에게서 이라는 이라고 이라면 입니다 까지는 부터는 에게는 와의 과의 에는 에도 "
    "에서 에게 으로 로는 로도 로써 로서 까지 부터 처럼 보다 마다 만큼 이나 이며 이고 이란 라는 라고 라면 하고 "
    "은 는 이 가 을 를 의 에 와 과 도 로 만 들".split(),
    key=len, reverse=True,
))
"""Particles (and the plural 들 and copula 입니다) a Korean word may end with, longest first; a search strips them
one after another (학습률들을 -> 학습률) while the word keeps at least two syllables."""
HANGUL_WORD = re.compile(r"^[\uac00-\ud7a3]+$")

_KOREAN_JS = """
var Stemmer = function() {
  const english = new EnglishStemmer();
  const particles = %s;
  this.stemWord = function(word) {
    if (!/^[\\uac00-\\ud7a3]+$/.test(word)) return english.stemWord(word);
    let stripped = true;
    while (stripped) {
      stripped = false;
      for (const particle of particles) {
        if (word.length - particle.length >= 2 && word.endsWith(particle)) {
          word = word.slice(0, -particle.length);
          stripped = true;
          break;
        }
      }
    }
    return word;
  };
};
"""


class SearchKorean(SearchLanguage):
    """Korean search: a word loses the particle at its end; English words are stemmed as in English."""

    lang = "ko"
    language_name = "Korean"
    stopwords = english_stopwords | {"및", "또는", "그리고", "그러나", "하지만", "수", "것", "등", "더", "또", "그", "이", "있다", "있습니다", "합니다", "입니다"}
    js_stemmer_code = SearchEnglish.js_stemmer_code.replace("var Stemmer = function", "var EnglishStemmer = function", 1) + _KOREAN_JS % (
        "[" + ", ".join(f'"{particle}"' for particle in KOREAN_PARTICLES) + "]"
    )

    def init(self, options: dict[str, str]) -> None:
        self.english = SearchEnglish(options)

    def stem(self, word: str) -> str:
        if not HANGUL_WORD.match(word):
            return self.english.stem(word)
        stripped = True
        while stripped:
            stripped = False
            for particle in KOREAN_PARTICLES:
                if len(word) - len(particle) >= 2 and word.endswith(particle):
                    word, stripped = word[: -len(particle)], True
                    break
        return word


def _book_labels_first(app: Sphinx) -> None:
    """Put the book's translation of the book theme's labels ahead of the theme's own."""
    for folder in app.config.locale_dirs:
        try:
            ours = gettext.translation(THEME_CATALOG, str(Path(app.srcdir, folder)), [_language(app)])
        except OSError:
            continue
        shipped = sphinx.locale.translators.get(("general", THEME_CATALOG))
        if shipped is not None:
            ours.add_fallback(shipped)
        sphinx.locale.translators["general", THEME_CATALOG] = ours
        return


def setup(app: Sphinx) -> dict[str, object]:
    app.add_config_value("dldna_languages", {"en": ""}, "html", dict)
    app.add_search_language(SearchKorean)
    app.connect("config-inited", _add_switch_to_header)
    app.add_css_file(SWITCH_STYLE)
    app.connect("builder-inited", _book_labels_first)
    app.connect("html-page-context", _link_languages)
    # After dldna_site (502), which points the Colab button at the English Colab edition.
    app.connect("html-page-context", _launch_in_language, priority=503)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
