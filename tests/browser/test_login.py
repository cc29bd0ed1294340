"""Signing in from the pages in headless Chromium: an action that needs a token sends the user to /login once,
then back; the cookie carries the next writes; signing out ends them."""

from __future__ import annotations

import re

import pytest
from support import admin_token, migrate, new_token, serve, shot

from api import create_app
from shared.store.db import session_scope
from shared.store.models import Sweep


@pytest.fixture(scope="module")
def site(tmp_path_factory, data_root, redis_url):
    url = f"sqlite:///{tmp_path_factory.mktemp('login') / 'pages.db'}"
    migrate(url)
    # The test Redis as broker: the runs queue there and no worker takes them.
    base, server = serve(create_app({"DATABASE_URL": url, "DATA_DIR": data_root, "BROKER_URL": redis_url}))
    yield {"base": base, "db": url}
    server.shutdown()


def test_a_run_button_asks_for_a_token_once_then_runs(site, page):
    base = site["base"]
    name, token = new_token(site["db"])
    page.goto(f"{base}/studies/normalization")
    assert page.locator("#sign-in-link").is_visible()
    page.click("#run button")
    page.wait_for_url(re.compile(r"/login\?next="))  # the POST was answered 401: sign in, then come back
    assert any("HTTP 401" in p for p in page.problems)
    page.problems.clear()
    page.fill("#token", "not-a-token")
    page.click("#sign-in")
    assert "not valid" in page.inner_text("#login-error")
    page.problems.clear()  # that 401 was the point
    page.fill("#token", token)
    page.click("#sign-in")
    page.wait_for_url(f"{base}/studies/normalization")
    assert page.inner_text("#signed-in") == name
    shot(page, "signed-in-study")
    page.click("#run button")
    page.wait_for_url(re.compile(r"/sweeps/\d+$"))
    sweep_id = int(page.url.rsplit("/", 1)[1])
    with session_scope(site["db"]) as s:
        assert s.get(Sweep, sweep_id).owner == name
    assert page.problems == []


def test_signing_out_ends_the_cookie(site, page, sign_in):
    base = site["base"]
    sign_in(page, base, site["db"])
    assert page.inner_text("#signed-in").endswith("(admin)")
    page.click("text=sign out")
    page.wait_for_selector("#sign-in-link")
    status = page.evaluate("""async () => (await apiFetch('/report/run', {method: 'POST',
        headers: {'Content-Type': 'application/json'}, body: JSON.stringify({seeds: 1})})).status""")
    assert status == 401
    assert admin_token(site["db"])  # the token itself stays valid: only the session ended
