"""The built website (_build/html, made by `make book`): every page exists, executed, offline-ready, and the
numbers the issues promise are on the pages."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlparse

import nbformat
import pytest

from tests.test_notebooks import ROOT, TOC_FILES

HTML = ROOT / "_build" / "html"
pytestmark = pytest.mark.book


@pytest.fixture(autouse=True, scope="module")
def built_website() -> None:
    """These tests run after `make book` (the unit suite deselects them by their ``book`` mark); a missing
    website is a failure, never a silent skip."""
    if not (HTML / "index.html").is_file():
        pytest.fail("the website is not built: run `make book` first")


PAGES = [HTML / f"{entry}.html" for entry in TOC_FILES if entry != "intro"] + [HTML / "intro.html"]


class _Collector(HTMLParser):
    """Scripts, links and visible text of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self.links: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script" and values.get("src"):
            self.scripts.append(values["src"])
        if tag in ("a", "link") and values.get("href"):
            self.links.append(values["href"])

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: Path) -> _Collector:
    collector = _Collector()
    collector.feed(page.read_text(encoding="utf-8"))
    return collector


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(HTML)))
def test_page_built_executed_and_offline(page: Path) -> None:
    assert page.is_file(), f"{page} was not built"
    html = page.read_text(encoding="utf-8")
    assert "Traceback (most recent call last)" not in html
    assert "cell_output" in html or page.name == "intro.html", "the notebook was not executed"
    remote = [src for src in parse(page).scripts if urlparse(src).scheme in ("http", "https")]
    assert not remote, f"{page.name} loads scripts from the network: {remote}"
    if "plotly-graph-div" in html:
        assert any(urlparse(src).path.endswith("plotly.min.js") for src in parse(page).scripts)


def test_plotly_and_mathjax_are_served_by_the_site() -> None:
    assert (HTML / "_static" / "plotly.min.js").stat().st_size > 1_000_000
    assert (HTML / "_static" / "mathjax" / "tex-chtml-full.js").is_file()
    assert any((HTML / "_static" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2").glob("*.woff"))


def test_getting_started_reaches_88_percent() -> None:
    text = " ".join(parse(HTML / "chapters" / "getting_started.html").text)
    match = re.search(r"network classifies\s+([\d.]+)%\s+of the 10,000 test", text)
    assert match, "the glued accuracy sentence is missing from the page"
    assert float(match.group(1)) >= 88.0


@pytest.mark.parametrize("page", [p for p in PAGES if "/exercises/" in str(p)], ids=lambda p: p.stem)
def test_every_worked_solution_passes_its_check(page: Path) -> None:
    notebook = ROOT / page.relative_to(HTML).with_suffix(".ipynb")
    checks = len(re.findall(r"""check\(\s*\\?["']""", notebook.read_text()))
    html = page.read_text(encoding="utf-8")
    assert "✗ Not yet" not in html
    assert html.count("✓ Correct") == checks > 0


def test_launch_buttons_point_at_files_in_the_repository() -> None:
    seen = 0
    for page in PAGES:
        for link in parse(page).links:
            if "colab.research.google.com/github/" in link or "mybinder.org/v2/gh/" in link:
                path = re.search(r"(?:blob/main/|filepath=|urlpath=tree/)([^&?#]+\.ipynb)", link)
                assert path, f"cannot find the notebook path in {link}"
                assert (ROOT / path.group(1).replace("%2F", "/")).is_file(), f"{link} points at a missing file"
                if "colab.research.google.com" in link:
                    assert path.group(1).startswith("colab/chapters/"), f"Colab must open the Colab edition: {link}"
                seen += 1
    assert seen >= sum(1 for p in PAGES if p.name != "intro.html")


EXECUTED = ROOT / "_build" / "jupyter_execute"
CHAPTER_PAGES = [page for page in PAGES if page.name != "intro.html"]


def figures_in_executed_notebook(page: Path) -> tuple[int, int]:
    """``(images, plotly figures)`` among the outputs of the notebook the build executed for ``page``."""
    notebook = nbformat.read(EXECUTED / page.relative_to(HTML).with_suffix(".ipynb"), as_version=4)
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    images = sum(1 for o in outputs if {"image/png", "image/svg+xml"} & set(o.get("data", {})))
    plotly = sum(o.get("data", {}).get("text/html", "").count('class="plotly-graph-div"') for o in outputs)
    return images, plotly


def figures_on_page(page: Path) -> tuple[int, int]:
    """``(images, plotly figures)`` of a built page: the images the build copied out of the notebook's outputs
    (into ``_images/``) and the plotly figure containers."""
    html = page.read_text(encoding="utf-8")
    return len(re.findall(r'<img [^>]*src="[^"]*_images/', html)), html.count('class="plotly-graph-div"')


@pytest.mark.parametrize("page", CHAPTER_PAGES, ids=lambda p: str(p.relative_to(HTML)))
def test_every_figure_the_notebook_draws_is_on_its_page(page: Path) -> None:
    executed = figures_in_executed_notebook(page)
    shown = figures_on_page(page)
    assert shown == executed, f"the executed notebook has (images, plotly) = {executed}, the page shows {shown}"


def test_the_chapters_have_figures() -> None:
    chapters = [page for page in CHAPTER_PAGES if "/exercises/" not in str(page)]
    empty = [page.stem for page in chapters if sum(figures_on_page(page)) == 0]
    assert not empty, f"chapters without a single figure on their page: {empty}"


MYST_ON_PAGE = re.compile(r"\{(?:glue|cite|numref|ref|doc|eq|term)(?::[a-z]+)?\}|```\{|:::\{")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(HTML)))
def test_no_page_shows_myst_markup_as_text(page: Path) -> None:
    text = " ".join(parse(page).text)
    raw = MYST_ON_PAGE.findall(text)
    assert not raw, f"{page.name} shows MyST markup as text: {raw[:5]}"


def _sidebar_links(page: Path) -> list[str]:
    """Targets of the links in the page's left navigation, in order."""
    html = page.read_text(encoding="utf-8")
    nav = html[html.index("bd-docs-nav") : html.index("</nav>", html.index("bd-docs-nav"))]
    return [link.split("#")[0] for link in re.findall(r'<a class="reference internal" href="([^"]+)"', nav)]


def test_sidebar_lists_every_page_in_reading_order() -> None:
    listed = [link.removesuffix(".html") for link in _sidebar_links(HTML / "intro.html")]
    expected = [entry for entry in TOC_FILES if entry != "intro"]
    assert [entry for entry in listed if entry in expected] == expected


LIVE_NOTEBOOKS = [path for path in (ROOT / "chapters").rglob("*.ipynb") if "from dldna.widgets import" in path.read_text()]


@pytest.mark.parametrize("notebook", LIVE_NOTEBOOKS, ids=lambda p: p.stem)
def test_live_widgets_leave_a_note_on_the_website(notebook: Path) -> None:
    html = (HTML / notebook.relative_to(ROOT).with_suffix(".html")).read_text(encoding="utf-8")
    assert "dldna-live-note" in html, "a live widget must show the note pointing to Colab on the static site"
    assert "widget-view+json" not in html
