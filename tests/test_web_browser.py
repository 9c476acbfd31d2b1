"""The review pages in a real browser: Chromium from the OS packages, driven by Selenium.

Outside CI the tests skip (with the reason) when no Chromium and chromedriver are found;
with ``CI=true`` they must run (``.ci/run`` installs them).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import EXAMPLES, SEED
from tests.helpers import burst
from tests.web_server import Server, running_server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")

if not (CHROMIUM and DRIVER):
    if os.environ.get("CI") == "true":
        raise RuntimeError("CI: the browser tests need chromium and chromium-driver installed")
    pytest.skip(
        "no chromium and chromedriver found (apt-get install chromium chromium-driver)",
        allow_module_level=True,
    )

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(redis_url: str) -> Iterator[Server]:
    """A server holding the seed, its copy with a paragraph dropped and a hostile page."""
    import redis

    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match="webui:*"):
        client.delete(key)
    client.close()
    with running_server(redis_url, "webui") as server, server.client() as api:
        copy = (EXAMPLES / "seed-copy-one-paragraph-dropped.html").read_text(encoding="utf-8")
        hostile = "<p>Breaking: &lt;script&gt;alert(1)&lt;/script&gt; was in the page text.</p>"
        response = api.post(
            "/v1/documents",
            json={
                "documents": [
                    {"id": "seed", "html": SEED.read_text(encoding="utf-8")},
                    {"id": "seed-copy", "html": copy},
                    {"id": "hostile", "html": hostile},
                ]
            },
        )
        assert 202 == response.status_code
        burst(server.settings)
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=str(DRIVER)), options=options)
    driver.implicitly_wait(5)  # elements of a page still loading
    try:
        yield driver
    finally:
        driver.quit()


def _sign_in(browser: Any, site: Server, token: str, target: str) -> None:
    from selenium.webdriver.common.by import By

    browser.delete_all_cookies()
    browser.get(f"{site.url}{target}")
    assert "/ui/login" in browser.current_url  # no session yet: sent to sign in
    browser.find_element(By.ID, "token").send_keys(token)
    browser.find_element(By.ID, "sign-in").click()
    _wait_for(
        browser, lambda d: "/ui/login" not in d.current_url or d.find_elements(By.ID, "error")
    )


def _wait_for(browser: Any, condition: Any) -> None:
    """A click starts a navigation: wait until the new page is there and loaded."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 20, ignored_exceptions=(WebDriverException,))
    wait.until(condition)
    wait.until(lambda driver: driver.execute_script("return document.readyState") == "complete")


def test_token_check(browser: Any, site: Server) -> None:
    """A wrong token is refused; a right one opens the page asked for, cookie HttpOnly."""
    from selenium.webdriver.common.by import By

    _sign_in(browser, site, "dedup_not-a-token", "/ui/documents/seed")
    assert "not accepted" in browser.find_element(By.ID, "error").text
    _sign_in(browser, site, site.token, "/ui/documents/seed")
    assert browser.current_url.endswith("/ui/documents/seed")
    [cookie] = browser.get_cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"


def test_seed_report_highlights_the_doubled_body(browser: Any, site: Server) -> None:
    """The seed's paragraphs 0-12 are the first copy, 13-25 the repeat, linked to each other."""
    from selenium.webdriver.common.by import By

    _sign_in(browser, site, site.token, "/ui/documents/seed")
    assert browser.find_element(By.ID, "flag-doubled_body").is_displayed()
    first = browser.find_elements(By.CSS_SELECTOR, ".para.first")
    repeat = browser.find_elements(By.CSS_SELECTOR, ".para.repeat")
    assert [f"p{n}" for n in range(13)] == [e.get_attribute("id") for e in first]
    assert [f"p{n}" for n in range(13, 26)] == [e.get_attribute("id") for e in repeat]
    colour = first[0].value_of_css_property("background-color")
    assert colour != browser.find_element(By.TAG_NAME, "body").value_of_css_property(
        "background-color"
    )
    twin = first[0].find_element(By.CSS_SELECTOR, "a.twin")
    assert twin.get_attribute("href").endswith("#p13")
    twin.click()
    assert browser.current_url.endswith("#p13")
    assert (
        first[0].find_element(By.CLASS_NAME, "text").text
        == repeat[0].find_element(By.CLASS_NAME, "text").text
    )


def test_side_by_side_highlights_the_words_that_differ(browser: Any, site: Server) -> None:
    """The seed against its copy: the dropped paragraph's words are marked, shared ones not."""
    from selenium.webdriver.common.by import By

    _sign_in(browser, site, site.token, "/ui/documents/seed")
    browser.find_element(By.CSS_SELECTOR, "a.compare").click()
    _wait_for(browser, lambda d: "/ui/compare" in d.current_url and d.find_elements(By.ID, "right"))
    assert "/ui/compare" in browser.current_url
    left = browser.find_element(By.ID, "left")
    right = browser.find_element(By.ID, "right")
    marked = left.find_elements(By.CSS_SELECTOR, "mark.diff")
    assert marked, "the words missing from the copy are highlighted"
    # the copy holds the body once: the seed's second copy is marked, the first one is not
    assert sum(len(m.text) for m in marked) < len(left.text) * 0.8, "shared words are not"
    right_marked = right.find_elements(By.CSS_SELECTOR, "mark.diff")
    assert sum(len(m.text) for m in right_marked) < len(right.text) / 2


def test_hostile_text_is_shown_as_text(browser: Any, site: Server) -> None:
    """``<script>alert(1)</script>`` in a page is text on its report page; no script runs."""
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    _sign_in(browser, site, site.token, "/ui/documents/hostile")
    text = browser.find_element(By.CSS_SELECTOR, "#p0 .text").text
    assert "<script>alert(1)</script>" in text
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018
