"""The API docs page and the sign-in page in a real headless Chromium: the nav's API link opens the rendered
OpenAPI document (offline, no script), and /login's commands wrap at their spaces, never inside a word.

Needs Debian's `chromium` and `playwright`, as tests/browser/test_browser.py; screenshots go to var/screenshots/.
"""

from __future__ import annotations

import pytest
from support import migrate, serve, shot

from api import create_app

# Per word of every <code> in the page: how many line boxes it spans (1: not broken inside the word).
WORD_LINES = """() => [...document.querySelectorAll('main code')].flatMap(code => {
  const text = code.firstChild, out = [];
  for (const m of text.textContent.matchAll(/\\S+/g)) {
    const r = document.createRange(); r.setStart(text, m.index); r.setEnd(text, m.index + m[0].length);
    out.push([m[0], new Set([...r.getClientRects()].map(x => Math.round(x.top))).size]);
  }
  return out;
})"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('apidocs') / 'pages.db'}"
    migrate(url)
    base, server = serve(create_app({"DATABASE_URL": url}))
    yield base
    server.shutdown()


def test_the_nav_api_link_opens_the_rendered_document(site, page):
    page.goto(site + "/")
    page.click("header nav a:text-is('API')")
    page.wait_for_selector("#api-index")
    assert page.url == site + "/api"
    doc = page.request.get(site + "/openapi.json").json()
    ops = sum(1 for ops in doc["paths"].values() for m in ops if m in ("get", "post", "put", "patch", "delete"))
    assert page.locator(".operation").count() == ops
    handout = page.locator("#get-handout")
    assert "GET /handout" in handout.locator("h2").inner_text() and "Handout" in handout.inner_text()
    assert page.locator("#schema-JobOut td code").first.inner_text() == "id"
    assert page.locator("script[src*='redoc'], script[src*='swagger']").count() == 0
    shot(page, "api-docs")
    assert not page.problems, page.problems


@pytest.mark.parametrize("width", [1280, 420])
def test_login_commands_break_at_spaces_not_inside_words(site, browser, width):
    ctx = browser.new_context(viewport={"width": width, "height": 900})
    pg = ctx.new_page()
    pg.goto(site + "/login")
    words = pg.evaluate(WORD_LINES)
    assert ["cnnlab", 1] in words and ["tokens", 1] in words and ["create", 1] in words
    assert all(lines == 1 for _, lines in words), words
    shot(pg, f"login-{width}")
    ctx.close()
