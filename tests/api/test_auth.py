"""Who may do what, on SQLite and PostgreSQL: tokens for writes, owners for cancel and downloads, closed reads,
the per-token cap of active jobs, and the pages' sign-in cookie with its cross-site guard."""

from __future__ import annotations

import hashlib
import re

import pytest
from support import admin_token, bearer, new_token, token_client

from api import create_app
from shared.store import artifacts, tokens
from shared.store.db import session_scope
from shared.store.models import Checkpoint, Job, Sweep

SMALL = {"preset": "mnist-fc", "overrides": {"train_limit": 200, "test_limit": 100}}
SWEEP = {"base": SMALL, "grid": {"lr": [0.01, 0.1]}, "seeds": 2}  # 4 jobs


@pytest.fixture
def alice(app, db_url):
    return token_client(app, new_token(db_url)[1])


@pytest.fixture
def bob(app, db_url):
    return token_client(app, new_token(db_url)[1])


def sign_in(browser, token: str, next_path: str = "/"):
    """POST the sign-in form as the page does: with the form token its GET put in the session."""
    page = browser.get("/login").data.decode()
    form_token = re.search(r'name="login_form_token" value="([^"]+)"', page).group(1)
    return browser.post("/login", data={"token": token, "next": next_path, "login_form_token": form_token})


def _refused(r, status: int = 401) -> str:
    assert r.status_code == status, (r.status_code, r.data[:300])
    if status == 401:
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
    return r.json["error"]["message"]


@pytest.mark.parametrize("path", ["/jobs", "/sweeps", "/studies/normalization/run", "/report/run", "/jobs/1/cancel",
                                  "/sweeps/1/cancel"])
def test_every_write_needs_a_token(anon, path):
    assert "needs an API token" in _refused(anon.post(path, json={}))


def test_a_route_that_does_not_exist_is_a_404_or_405_not_a_401(anon):
    assert anon.post("/no-such-route").status_code == 404 and anon.delete("/jobs").status_code == 405


def test_a_bad_malformed_or_revoked_token_is_a_401(anon, alice, db_url):
    assert "not valid" in _refused(anon.post("/jobs", json=SMALL, headers=bearer("nope")))
    assert "Bearer <token>" in _refused(anon.post("/jobs", json=SMALL, headers={"Authorization": "Basic eDp5"}))
    name, token = new_token(db_url)
    assert anon.post("/jobs", json=SMALL, headers=bearer(token)).status_code == 201
    with session_scope(db_url) as s:
        tokens.revoke_token(s, name)
    r = anon.post("/jobs", json=SMALL, headers=bearer(token))
    assert "revoked" in _refused(r) and 'error="invalid_token"' in r.headers["WWW-Authenticate"]


def test_jobs_and_sweeps_record_their_owner_and_only_it_or_an_admin_may_cancel(client, alice, bob, db_url):
    job = alice.post("/jobs", json=SMALL).json
    owner = job["owner"]
    assert owner.startswith("user-")
    assert "belongs to" in _refused(bob.post(f"/jobs/{job['id']}/cancel"), 403)
    assert alice.post(f"/jobs/{job['id']}/cancel").status_code == 202
    other = alice.post("/jobs", json=SMALL).json["id"]
    assert client.post(f"/jobs/{other}/cancel").status_code == 202  # the admin
    sweep = alice.post("/sweeps", json=SWEEP).json
    assert sweep["owner"] == owner
    with session_scope(db_url) as s:
        assert {j.owner for j in s.query(Job).filter(Job.sweep_id == sweep["id"])} == {owner}
    _refused(bob.post(f"/sweeps/{sweep['id']}/cancel"), 403)
    assert alice.post(f"/sweeps/{sweep['id']}/cancel").json["cancelled"] == 4


def test_a_job_from_before_tokens_is_the_admins_alone(client, alice, db_url):
    job_id = client.post("/jobs", json=SMALL).json["id"]
    with session_scope(db_url) as s:
        s.get(Job, job_id).owner = None  # as migration 0004 leaves existing rows
    assert "nobody" in _refused(alice.post(f"/jobs/{job_id}/cancel"), 403)
    assert client.post(f"/jobs/{job_id}/cancel").status_code == 202


def test_checkpoint_downloads_are_for_the_owner_or_an_admin(client, alice, bob, anon, db_url, tmp_path):
    job_id = alice.post("/jobs", json=SMALL).json["id"]
    path = tmp_path / "epoch-001.pt"
    path.write_bytes(b"weights")
    key = artifacts.artifact_key(job_id, path.name)
    artifacts.upload(path, key)  # the test's own store (the artifact_store fixture)
    with session_scope(db_url) as s:
        s.add(Checkpoint(job_id=job_id, epoch=1, key=key, sha256=hashlib.sha256(b"weights").hexdigest(),
                         size_bytes=7))
    url = f"/jobs/{job_id}/checkpoints/1"
    _refused(anon.get(url))
    link = anon.get(url, headers={"Accept": "text/html"})  # the result page's download link, signed out
    assert link.status_code == 302 and link.headers["Location"] == f"/login?next={url}"
    _refused(bob.get(url), 403)
    assert alice.get(url).data == b"weights" and client.get(url).status_code == 200
    assert anon.get(f"/jobs/{job_id}/checkpoints").status_code == 200  # the listing is a read


def test_reads_are_open_by_default_and_closed_by_the_setting(anon, db_url, data_root):
    assert anon.get("/jobs").status_code == 200 and anon.get("/").status_code == 200
    app = create_app({"DATABASE_URL": db_url, "DATA_DIR": data_root, "READS_REQUIRE_TOKEN": True})
    closed = app.test_client()
    assert "reads need an API token" in _refused(closed.get("/jobs"))
    page = closed.get("/sweeps?x=1", headers={"Accept": "text/html"})
    assert page.status_code == 302 and page.headers["Location"] == "/login?next=/sweeps?x%3D1"
    assert closed.get("/healthz").status_code in (200, 503) and closed.get("/login").status_code == 200
    assert token_client(app, admin_token(db_url)).get("/jobs").status_code == 200


def test_a_sweep_that_would_pass_the_cap_is_refused_whole(app, alice, client, db_url):
    app.config["MAX_ACTIVE_JOBS"] = 5
    with session_scope(db_url) as s:
        sweeps_before = s.query(Sweep).count()
    mine = [alice.post("/jobs", json=SMALL) for _ in range(3)]
    assert [r.status_code for r in mine] == [201] * 3
    r = alice.post("/sweeps", json=SWEEP)  # 4 more jobs: 7 > 5
    assert r.status_code == 429 and r.json["error"]["details"] == {"cap": 5, "active": 3, "adding": 4}
    assert "at most 5" in r.json["error"]["message"]
    with session_scope(db_url) as s:
        assert s.query(Sweep).count() == sweeps_before  # nothing of it stored
    assert alice.post("/sweeps", json=SWEEP | {"seeds": 1}).status_code == 201  # 2 more: 5
    assert alice.post("/jobs", json=SMALL).status_code == 429
    assert client.post("/sweeps", json=SWEEP | {"seeds": 3}).status_code == 201  # the admin is exempt
    assert alice.post(f"/jobs/{mine[0].json['id']}/cancel").status_code == 202  # a finished job frees its place
    assert alice.post("/jobs", json=SMALL).status_code == 201


def test_the_pages_sign_in_once_and_cookie_writes_need_the_page_header(app, db_url):
    browser = app.test_client()
    name, token = new_token(db_url)
    job_id = token_client(app, token).post("/jobs", json=SMALL).json["id"]
    bad = sign_in(browser, "wrong")
    assert bad.status_code == 401 and b"not valid" in bad.data
    r = sign_in(browser, token, f"/results/{job_id}")
    assert r.status_code == 302 and r.headers["Location"] == f"/results/{job_id}"
    cookie = r.headers["Set-Cookie"]
    assert "SameSite=Lax" in cookie and "HttpOnly" in cookie and token not in cookie
    assert name.encode() in browser.get("/").data  # signed in as
    # A cross-site form could send this cookie-signed POST; without the page's header or a JSON body it is refused.
    assert "cross-site" in _refused(browser.post(f"/jobs/{job_id}/cancel"), 403)
    assert browser.post(f"/jobs/{job_id}/cancel", headers={"X-Requested-With": "fetch"}).status_code == 202
    assert browser.post("/jobs", json=SMALL).status_code == 201  # a JSON body is the page's own too
    browser.get("/logout")
    _refused(browser.post("/jobs", json=SMALL))


def test_sign_in_goes_back_only_to_this_site_and_a_revoked_token_signs_out(app, db_url):
    browser = app.test_client()
    name, token = new_token(db_url)
    for evil in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "/\t/evil.example", "/\n/evil.example",
                 "/ /evil.example", "https:/evil.example", "javascript:alert(1)", "evil.example"):
        assert sign_in(browser, token, evil).headers["Location"] == "/", evil
    assert sign_in(browser, token, "/sweeps?x=1#top").headers["Location"] == "/sweeps?x=1#top"
    assert browser.post("/jobs", json=SMALL).status_code == 201
    with session_scope(db_url) as s:
        tokens.revoke_token(s, name)
    _refused(browser.post("/jobs", json=SMALL))


def test_a_sign_in_form_from_another_site_is_refused(app, db_url):
    """Login CSRF: a cross-site form posting the attacker's token has no form token (nor this browser's session)."""
    browser = app.test_client()
    _, token = new_token(db_url)
    forged = browser.post("/login", data={"token": token, "next": "/"})
    assert forged.status_code == 403 and b"another site" in forged.data and "Location" not in forged.headers
    browser.get("/login")  # this browser has a form token now, but the forged form still does not carry it
    assert browser.post("/login", data={"token": token, "login_form_token": "guess"}).status_code == 403
    assert _refused(browser.post("/jobs", json=SMALL))  # not signed in
    assert sign_in(browser, token).status_code == 302


def test_the_openapi_document_states_the_tokens_and_their_answers(anon):
    doc = anon.get("/openapi.json").json
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    post = doc["paths"]["/jobs"]["post"]
    assert {"bearer": []} in post["security"] and {} not in post["security"]
    assert {"401", "403", "429"} <= set(post["responses"]) and "Retry-After" in post["responses"]["429"]["headers"]
    assert "owner" in doc["paths"]["/jobs/{job_id}/cancel"]["post"]["responses"]["403"]["description"]
    assert "owner" in doc["paths"]["/jobs/{job_id}/checkpoints/{epoch}"]["get"]["responses"]["403"]["description"]
    assert {} in doc["paths"]["/jobs"]["get"]["security"]  # reads: open by default
    assert "security" not in doc["paths"]["/healthz"]["get"]
