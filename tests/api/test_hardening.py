"""The hostile-operator probe's findings (issue 21) as tests: what /healthz tells whom, no server paths in answers."""

from __future__ import annotations

import sqlite3
import time

import pytest
from support import admin_token, token_client

from api import create_app


@pytest.fixture
def sqlite_app(sqlite_url, data_root, artifact_store):
    return create_app({"DATABASE_URL": sqlite_url, "DATA_DIR": data_root, "BROKER_URL": "redis://127.0.0.1:1/0"})


def test_healthz_says_down_and_names_no_host_without_a_token(anon):
    r = anon.get("/healthz")  # the broker URL points at a closed port on 127.0.0.1
    assert r.status_code == 503 and r.json == {"status": "degraded", "database": "ok", "broker": "down"}, r.json
    assert b"127.0.0.1" not in r.data and b"6379" not in r.data


def test_healthz_gives_the_errors_to_a_token_holder(client):
    r = client.get("/healthz")
    assert r.status_code == 503 and r.json["broker"] == "down" and "broker" in r.json["errors"], r.json


def test_healthz_on_a_database_that_is_down_names_no_host(data_root):
    app = create_app({"DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/secretdb",
                      "BROKER_URL": "filesystem://", "DATA_DIR": data_root})
    r = app.test_client().get("/healthz")
    assert r.status_code == 503 and r.json == {"status": "degraded", "database": "down", "broker": "ok"}, r.json
    assert b"secretdb" not in r.data and b"127.0.0.1" not in r.data


def test_healthz_reports_a_held_sqlite_write_lock(sqlite_app, sqlite_url):
    holder = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another process's long write: writes would wait, then 503
        r = sqlite_app.test_client().get("/healthz")
        assert r.status_code == 503 and r.json["database"] == "locked", r.json
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert sqlite_app.test_client().get("/healthz").json["database"] == "ok"


def test_a_missing_dataset_names_the_setting_not_the_server_path(client, data_root):
    r = client.post("/jobs", json={"preset": "mnist-fc", "overrides": {"dataset": "MNIST"}})
    assert r.status_code == 422 and "dataset" in r.text and "CNNLAB_DATA_DIR" in r.text, r.text
    assert str(data_root) not in r.text and str(data_root.resolve()) not in r.text


@pytest.mark.parametrize("memory_gb", [0.3, 0.5])
def test_memory_below_the_trainer_s_own_is_refused_at_submit(client, memory_gb):
    r = client.post("/jobs", json={"preset": "mnist-fc", "overrides": {"memory_gb": memory_gb}})
    assert r.status_code == 422 and r.json["error"]["details"][0]["field"] == "memory_gb", r.json
    assert "the trainer itself" in r.json["error"]["message"]


def test_a_write_during_a_held_sqlite_lock_is_a_quick_503(sqlite_app, sqlite_url):
    """The probe: writes answered 503 only after the 30 s busy timeout; the API now waits 2 s at most."""
    client = token_client(sqlite_app, admin_token(sqlite_url))
    holder = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        r = client.post("/jobs", json={"preset": "mnist-fc"})
        assert r.status_code == 503 and r.headers["Retry-After"] == "5", r.json
        assert time.monotonic() - started < 10, "the write waited out a long busy timeout"
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_a_study_run_without_a_body_is_the_documented_400(client):
    """schemathesis found this 400 undocumented."""
    r = client.post("/studies/normalization/run")
    assert r.status_code == 400 and "JSON" in r.json["error"]["message"], r.json
    doc = client.get("/openapi.json").json
    assert "400" in doc["paths"]["/studies/{name}/run"]["post"]["responses"]


@pytest.mark.parametrize("size", ["", "smallest"])
def test_a_study_s_size_outside_its_enum_is_a_422(client, size):
    """schemathesis (ST201): `?size=` (empty) was taken for quick although the documented enum has no empty size."""
    r = client.get(f"/studies/normalization?size={size}")
    assert r.status_code == 422 and r.json["error"]["details"][0]["field"] == "size", r.json


def test_the_documented_sort_grammar_is_the_one_the_list_takes(client):
    """schemathesis (ST202): the schema promised any sort string; its pattern now matches what check_sort takes."""
    import re

    pattern = re.compile(next(p for p in client.get("/openapi.json").json["paths"]["/jobs"]["get"]["parameters"]
                              if p["name"] == "sort")["schema"]["pattern"])
    for sort in ("lr", "-test_accuracy", "model_args.n_feature", "pool", "b\u00d1", "-"):
        assert bool(pattern.fullmatch(sort)) == (client.get(f"/jobs?sort={sort}").status_code == 200), sort
