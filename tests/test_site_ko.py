"""The Korean website in a browser: its search finds Korean words whatever particle follows them, and the
language switch takes the reader to the same page in the other language and back. (The checks every page
passes in both languages, offline loading, figures, sliders and phone width, are in test_site.py.)"""

from __future__ import annotations

import pytest

from tests.test_book_ko import KOREAN
from tests.test_site import browser, open_page, site  # noqa: F401 (pytest fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not (KOREAN / "index.html").is_file(), reason="the website is not built: run `make book` first")]


@pytest.mark.parametrize("query", ["학습률", "학습률을", "에폭", "Adam"])
def test_korean_search_finds_the_pages_that_use_a_word(browser: object, site: str, query: str) -> None:
    tab, log = open_page(browser, f"{site}/ko/search.html?q={query}")
    try:
        tab.wait_for_selector("ul.search li", timeout=20_000)
        results = tab.locator("ul.search li a").all_inner_texts()
        assert results, f"searching the Korean site for {query} found nothing"
        assert not log.remote_requests and not log.console_errors
    finally:
        tab.close()


def test_the_language_switch_leads_to_the_same_page_and_back(browser: object, site: str) -> None:
    tab, log = open_page(browser, f"{site}/chapters/exercises/getting_started.html")
    try:
        with tab.expect_navigation():
            tab.locator("a.dldna-language-link").first.click()
        assert tab.url == f"{site}/ko/chapters/exercises/getting_started.html"
        assert tab.evaluate("document.documentElement.lang") == "ko"
        with tab.expect_navigation():
            tab.locator("a.dldna-language-link").first.click()
        assert tab.url == f"{site}/chapters/exercises/getting_started.html"
        assert not log.page_errors
    finally:
        tab.close()
