"""Headless Chromium for the page tests: a browser per module, a page that records every problem, screenshots.

Needs Debian's `chromium` package (/usr/bin/chromium, or $CNNLAB_CHROMIUM) and `playwright` (Python);
`playwright install` is never needed. Screenshots go to var/screenshots/ (or $CNNLAB_SCREENSHOT_DIR).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from support import admin_token

CHROMIUM = os.environ.get("CNNLAB_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def pytest_collection_modifyitems(config, items):
    if shutil.which(CHROMIUM) is None:
        skip = pytest.mark.skip(reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")
        for item in items:
            if Path(str(item.fspath)).parent == Path(__file__).parent:
                item.add_marker(skip)


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    """A fresh page that records console errors, uncaught exceptions, failed requests and HTTP errors."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = ctx.new_page()
    pg.problems = []
    pg.on("console", lambda m: m.type == "error" and pg.problems.append(f"console: {m.text}"))
    pg.on("pageerror", lambda e: pg.problems.append(f"page error: {e}"))
    # A request still open when the page reloads or leaves (a live log stream; a script of the jobs list, which
    # reloads itself while jobs run) is aborted by the browser: not a failure. A missing file is an HTTP error below.
    pg.on("requestfailed", lambda r: r.failure == "net::ERR_ABORTED"
          or pg.problems.append(f"request failed: {r.url} ({r.failure})"))
    pg.on("response", lambda r: r.status >= 400 and pg.problems.append(f"HTTP {r.status}: {r.url}"))
    yield pg
    ctx.close()


@pytest.fixture
def sign_in():
    """`sign_in(page, base, db_url)`: sign the page in through /login with an admin token of that database (the
    pages' writes then work, with the session cookie); returns the token. Pass `token=` to sign in as another."""

    def _sign_in(pg, base: str, db_url: str, token: str | None = None) -> str:
        token = token or admin_token(db_url)
        pg.goto(f"{base}/login")
        pg.fill("#token", token)
        pg.click("#sign-in")
        pg.wait_for_selector("#signed-in")
        return token

    return _sign_in
