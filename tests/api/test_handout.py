"""GET /handout (page, JSON, one-file export) and POST /handout/run over the Flask app on a database of its own."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select
from support import admin_token, migrate, succeed, token_client

from api import create_app
from api.schemas.handout import Handout
from shared.lab.handout import QUESTIONS
from shared.store.db import session_scope
from shared.store.models import Job, Sweep

SECTIONS = ["1.5", "1.6", "2, 3", "4.1", "4.2", "4.3", "4.4", "4.5", "4.6", "4.7", "4.8"]  # the seed's order


@pytest.fixture
def fresh(tmp_path, data_root, sent, artifact_store):
    """An app on an empty database (no study has run yet), an admin client and an anonymous one."""
    url = f"sqlite:///{tmp_path / 'handout.db'}"
    migrate(url)
    app = create_app({"DATABASE_URL": url, "DATA_DIR": data_root, "BROKER_URL": "redis://127.0.0.1:1/0"})
    return url, token_client(app, admin_token(url)), app.test_client()


def sign_in(browser, token: str):
    page = browser.get("/login").data.decode()
    form_token = re.search(r'name="login_form_token" value="([^"]+)"', page).group(1)
    return browser.post("/login", data={"token": token, "next": "/handout", "login_form_token": form_token})


def test_every_question_in_the_handouts_order_not_run_yet(fresh):
    _, client, _ = fresh
    r = client.get("/handout?format=json")
    assert r.status_code == 200
    body = Handout.model_validate(r.json)  # the documented response model
    assert [q.section for q in body.questions] == SECTIONS == [q.section for q in QUESTIONS]
    assert {q.status.state for q in body.questions} == {"not run"}
    first = r.json["questions"][0]
    assert first["study"] == "fc-vs-cnn" and "CNN" in first["lab_answer"]
    assert [v["text"] for v in first["verdicts"]] == ["The CNN beats the FC network at equal parameters."]
    assert first["tables"][0]["title"] == "FC vs CNN at equal parameters (MNIST)"
    assert all(p["seeds"] == 5 and p["why"] == "never run" for p in r.json["plan"])
    assert next(q for q in r.json["questions"] if q["section"] == "4.5")["lab_answer"] == ""


def test_the_button_queues_every_quick_study_once_then_statuses_follow(fresh):
    url, client, _ = fresh
    r = client.post("/handout/run", json={})
    assert r.status_code == 201, r.json
    assert len(r.json["sweep_ids"]) == 9 and r.json["jobs"] == sum(p["jobs"] for p in r.json["plan"]) > 200
    again = client.post("/handout/run", json={})  # a second click while they run queues nothing
    assert again.status_code == 201 and again.json["jobs"] == 0 and again.json["sweep_ids"] == []
    assert {p["why"] for p in again.json["plan"]} == {"running: wait for its jobs"}
    running = client.get("/handout?format=json").json["questions"]
    assert {q["status"]["state"] for q in running} == {"running"}
    with session_scope(url) as s:  # normalization's 15 jobs succeed: 4.2 is answered at 5 seeds
        sweep = s.scalar(select(Sweep.id).where(Sweep.study == "normalization"))
        jobs = list(s.scalars(select(Job).where(Job.sweep_id == sweep).order_by(Job.id)))
        assert sweep in r.json["sweep_ids"] and len(jobs) == 15
        ids, cells = [j.id for j in jobs], [j.cell_index for j in jobs]
    succeed(url, ids, [0.97 - 0.03 * c + 0.001 * i for i, c in enumerate(cells)])
    q42 = next(q for q in client.get("/handout?format=json").json["questions"] if q["section"] == "4.2")
    assert q42["status"] == {"state": "answered", "n": 5, "active": 0, "text": "answered at 5 seeds"}
    assert [v["verdict"] for v in q42["verdicts"]] == ["holds", "holds"]
    assert all("points" in v["sentence"] for v in q42["verdicts"])  # the verdicts come with their evidence
    plan = {p["study"]: p for p in client.get("/handout?format=json").json["plan"]}
    assert plan["normalization"]["seeds"] == 0 and plan["normalization"]["why"].startswith("answered")


def test_the_button_needs_a_token_and_the_pages_own_header(fresh):
    url, _, anon = fresh
    assert anon.post("/handout/run", json={}).status_code == 401
    assert sign_in(anon, admin_token(url)).status_code == 302
    forged = anon.post("/handout/run", data="{}")  # a cross-site form: the cookie alone, no header, no JSON
    assert forged.status_code == 403
    ok = anon.post("/handout/run", data="{}", headers={"X-Requested-With": "fetch", "Content-Type": "application/json"})
    assert ok.status_code == 201 and ok.json["jobs"] > 0


def test_the_page_and_the_one_file_export(fresh):
    _, client, _ = fresh
    page = client.get("/handout", headers={"Accept": "text/html"}).data.decode()
    assert 'id="run-all-button"' in page and page.count('class="question"') == len(SECTIONS)
    assert re.search(r'<nav>\s*<a href="/handout">Handout</a>', page)  # first in the nav
    r = client.get("/handout?format=file&size=full")
    assert r.status_code == 200 and r.headers["Content-Disposition"] == 'attachment; filename="full-cnnlab-handout.html"'
    html = r.data.decode()
    assert "<style>" in html and "@media print" in html and html.count('class="question"') == len(SECTIONS)
    assert "<script" not in html and 'href="/' not in html and "<link" not in html  # nothing to fetch from us


@pytest.mark.parametrize("query, field", [("format=pdf", "format"), ("size=huge", "size")])
def test_bad_queries_are_422_naming_the_field(fresh, query, field):
    _, client, _ = fresh
    r = client.get(f"/handout?{query}")
    assert r.status_code == 422 and r.json["error"]["details"][0]["field"] == field


def test_the_openapi_document_has_the_handout(fresh):
    _, client, _ = fresh
    doc = client.get("/openapi.json").json
    get = doc["paths"]["/handout"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert get == {"$ref": "#/components/schemas/Handout"}
    assert "questions" in doc["components"]["schemas"]["Handout"]["properties"]
    assert "401" in doc["paths"]["/handout/run"]["post"]["responses"]
