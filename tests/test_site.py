"""The website as a reader sees it: Debian's Chromium, headless, against the built site served on 127.0.0.1.

Every request to another host is answered with an error and recorded, so these tests also prove that the site
needs no network. Screenshots of every page (desktop and phone width) are saved in ``test-artifacts/``.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.test_book import HTML
from tests.test_book import PAGES as ENGLISH_PAGES
from tests.test_book_ko import KOREAN_PAGES
from tests.test_notebooks import ROOT

PAGES = ENGLISH_PAGES + KOREAN_PAGES  # the tests below run on the site in both languages

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
LAUNCH_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
SETTLE_MS = 1500  # after the load event: plotly and MathJax draw asynchronously

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not (HTML / "index.html").is_file(), reason="the website is not built: run `make book` first"),
    pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason="Chromium is not installed (apt-get install chromium)"),
]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the name is the base class's)
        """Keep the test output free of one line per request."""


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    """The built website served on a free port of 127.0.0.1; yields its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(HTML)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@dataclass
class PageLog:
    """What a page did while it loaded: console errors, uncaught exceptions, and requests to other hosts."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    remote_requests: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_FLAGS)
        yield chromium
        chromium.close()


def open_page(browser: object, url: str, viewport: dict[str, int] = DESKTOP) -> tuple[object, PageLog]:
    """Load ``url`` with every off-site request refused and recorded; give its scripts time to run."""
    log = PageLog()
    page = browser.new_page(viewport=viewport)

    def route(route: object) -> None:
        host = urlparse(route.request.url).hostname
        if route.request.url.startswith("data:") or host == "127.0.0.1":
            route.continue_()
        else:
            log.remote_requests.append(route.request.url)
            route.abort()

    page.route("**/*", route)
    page.on("console", lambda message: message.type == "error" and log.console_errors.append(message.text))
    page.on("pageerror", lambda error: log.page_errors.append(str(error)))
    page.goto(url, wait_until="load")
    page.wait_for_timeout(SETTLE_MS)
    return page, log


def page_url(site: str, page: Path) -> str:
    return f"{site}/{page.relative_to(HTML).as_posix()}"


def artifact(name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / name


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(HTML)))
def test_page_loads_offline_without_errors(browser: object, site: str, page: Path) -> None:
    tab, log = open_page(browser, page_url(site, page))
    try:
        assert not log.page_errors, f"uncaught errors: {log.page_errors}"
        assert not log.console_errors, f"console errors: {log.console_errors}"
        assert not log.remote_requests, f"the page asked the network for: {log.remote_requests}"
        assert tab.locator("article").count() >= 1
        name = page.relative_to(HTML).with_suffix("").as_posix().replace("/", "__")
        tab.screenshot(path=artifact(f"{name}.png"), full_page=True)
    finally:
        tab.close()


FIGURES_JS = """
() => ({
    images: [...document.querySelectorAll('article img')].map(img => ({src: img.src, width: img.naturalWidth})),
    plotly: [...document.querySelectorAll('article .plotly-graph-div')].map(div => div.querySelectorAll('.main-svg').length),
})
"""


@pytest.mark.parametrize("page", [p for p in PAGES if p.name != "intro.html"], ids=lambda p: str(p.relative_to(HTML)))
def test_every_figure_is_drawn_in_the_browser(browser: object, site: str, page: Path) -> None:
    """Images load (a broken one has no natural width) and every plotly figure draws its SVG."""
    tab, _ = open_page(browser, page_url(site, page))
    try:
        tab.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        tab.wait_for_timeout(500)
        figures = tab.evaluate(FIGURES_JS)
        broken = [image["src"] for image in figures["images"] if image["width"] == 0]
        assert not broken, f"images that did not load: {broken}"
        assert all(count > 0 for count in figures["plotly"]), "a plotly figure did not draw"
    finally:
        tab.close()


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(HTML)))
def test_page_fits_a_phone_screen(browser: object, site: str, page: Path) -> None:
    """At phone width the text column never needs sideways scrolling (wide figures scroll inside their own box)."""
    tab, _ = open_page(browser, page_url(site, page), PHONE)
    try:
        overflow = tab.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"the page is {overflow}px wider than a {PHONE['width']}px phone screen"
        name = page.relative_to(HTML).with_suffix("").as_posix().replace("/", "__")
        tab.screenshot(path=artifact(f"{name}__phone.png"))
    finally:
        tab.close()


def test_math_is_typeset(browser: object, site: str) -> None:
    page = next(p for p in PAGES if "$" in (ROOT / p.relative_to(HTML).with_suffix(".ipynb")).read_text(errors="ignore")
                if (ROOT / p.relative_to(HTML).with_suffix(".ipynb")).is_file())
    tab, _ = open_page(browser, page_url(site, page))
    try:
        tab.wait_for_selector("mjx-container", timeout=20_000)
        assert tab.locator("mjx-container").count() > 0
        assert tab.locator("text=\\(").count() == 0, "raw TeX delimiters are left on the page"
    finally:
        tab.close()


def test_search_finds_adam(browser: object, site: str) -> None:
    tab, log = open_page(browser, f"{site}/search.html?q=Adam")
    try:
        tab.wait_for_selector("ul.search li", timeout=20_000)
        results = tab.locator("ul.search li").all_inner_texts()
        assert results, "searching for Adam found nothing"
        assert not log.remote_requests
    finally:
        tab.close()


SLIDER_FIGURES_JS = """
() => [...document.querySelectorAll('.js-plotly-plot')]
        .map((div, index) => ({index, steps: ((div.layout.sliders || [])[0] || {}).steps || []}))
        .filter(figure => figure.steps.length > 1)
        .map(figure => ({index: figure.index, steps: figure.steps.length}))
"""


def _pages_with_slider_figures() -> list[Path]:
    return [page for page in PAGES if page.is_file() and '"sliders"' in page.read_text(encoding="utf-8")]


def test_the_book_has_kernel_free_slider_figures() -> None:
    assert _pages_with_slider_figures(), "no page of the website has a plotly figure with a slider"


FIGURE_STATE_JS = """
(index) => {
    const div = document.querySelectorAll('.js-plotly-plot')[index];
    const traces = div.data.map(t => [t.x, t.y, t.z, t.visible, t.opacity, t.line, t.marker]);
    return JSON.stringify([traces, div.layout.title]);
}
"""


@pytest.mark.parametrize("page", _pages_with_slider_figures(), ids=lambda p: str(p.relative_to(HTML)))
def test_moving_a_slider_changes_the_figure(browser: object, site: str, page: Path) -> None:
    """Click each slider of each slider figure at its first and at its last step: the figure must differ."""
    tab, log = open_page(browser, page_url(site, page))
    try:
        tab.wait_for_function("document.querySelectorAll('.js-plotly-plot').length > 0", timeout=20_000)
        figures = tab.evaluate(SLIDER_FIGURES_JS)
        assert figures, "the slider figure did not render"
        for figure in figures:
            rails = tab.locator(".js-plotly-plot").nth(figure["index"]).locator(".slider-rail-rect")
            assert rails.count() >= 1, "the slider rail is not drawn"
            for rail_index in range(rails.count()):
                rail = rails.nth(rail_index)
                rail.scroll_into_view_if_needed()
                states = []
                for fraction in (0.0, 1.0):
                    box = rail.bounding_box()
                    assert box is not None, "the slider rail is not visible"
                    tab.mouse.click(box["x"] + 2 + fraction * (box["width"] - 4), box["y"] + box["height"] / 2)
                    tab.wait_for_timeout(300)
                    states.append(tab.evaluate(FIGURE_STATE_JS, figure["index"]))
                assert states[0] != states[1], f"slider {rail_index} of figure {figure['index']}: first and last steps look the same"
        assert not log.page_errors, f"uncaught errors while using the sliders: {log.page_errors}"
    finally:
        tab.close()
