"""Sweeps through the JSON API on both databases (Flask's test client; the broker replaced by a recorder)."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import func, select
from support import admin_token, token_client

from api import create_app
from shared.lab.sweeps import MAX_JOBS
from shared.store.db import session_scope
from shared.store.models import Job, Result, Sweep

BODY = {"name": "hidden", "base": {"preset": "mnist-fc", "overrides": {"train_limit": 500, "test_limit": 200}},
        "grid": {"model_args.n_hidden": [4, 8], "lr": [0.01, 0.1]}, "seeds": 2, "priority": 3}




def counts(db_url) -> tuple[int, int]:
    with session_scope(db_url) as s:
        return s.scalar(select(func.count()).select_from(Sweep)), s.scalar(select(func.count()).select_from(Job))


def test_create_expands_cells_and_seeds_in_order(client, sent, db_url):
    r = client.post("/sweeps", json=BODY)
    assert r.status_code == 201, r.json
    sweep = r.json
    assert r.headers["Location"].endswith(f"/sweeps/{sweep['id']}")
    assert sweep["jobs"] == 8 and sweep["counts"]["queued"] == 8 and sweep["seeds"] == [0, 1]
    assert [c["values"] for c in sweep["cells"]] == [
        {"model_args.n_hidden": 4, "lr": 0.01}, {"model_args.n_hidden": 4, "lr": 0.1},
        {"model_args.n_hidden": 8, "lr": 0.01}, {"model_args.n_hidden": 8, "lr": 0.1}]
    assert all(c["n"] == 0 and c["test_accuracy"]["ci95"] is None for c in sweep["cells"])
    jobs = client.get(f"/jobs?sweep_id={sweep['id']}&limit=200").json["items"]
    assert len(jobs) == 8 and len(sent) == 8 and {c[2] for c in sent} == {3}
    job = client.get(f"/jobs/{sweep['cells'][3]['job_ids'][1]}").json
    assert job["sweep_id"] == sweep["id"] and job["cell_index"] == 3
    assert job["cell"] == {"model_args.n_hidden": 8, "lr": 0.1}
    assert job["spec"]["model_args"] == {"n_hidden": 8} and job["spec"]["lr"] == 0.1 and job["spec"]["seed"] == 1
    assert job["spec"]["train_limit"] == 500 and job["spec"]["momentum"] == 0.5


def test_seed_list_and_full_spec_base(client):
    spec = {"model": "cnn", "dataset": "mnist", "model_args": {"n_feature": 2}}
    r = client.post("/sweeps", json={"base": {"spec": spec}, "grid": {"model_args.n_feature": [3, 5]},
                                     "seeds": [7, 11]})
    assert r.status_code == 201, r.json
    assert r.json["seeds"] == [7, 11] and r.json["preset"] is None and r.json["jobs"] == 4
    job = client.get(f"/jobs/{r.json['cells'][1]['job_ids'][0]}").json
    assert job["spec"]["model_args"] == {"n_feature": 5} and job["spec"]["seed"] == 7


@pytest.mark.parametrize("body, needle, field", [
    (BODY | {"grid": {"model_args.n_hidden": [4, 0]}}, "cell 1 (model_args.n_hidden=0)", "model_args.n_hidden"),
    (BODY | {"grid": {"lr": [0.1, -1]}}, "cell 1 (lr=-1)", "lr"),
    (BODY | {"grid": {"colour": ["red"]}}, "cell 0 (colour=red)", "colour"),
    (BODY | {"grid": {"model_args.n_layers": [2]}}, "n_layers", "model_args.n_layers"),
    (BODY | {"grid": {"seed": [1, 2]}}, "seeds", "grid.seed"),
    (BODY | {"grid": {"lr": []}}, "non-empty", "grid.lr"),
    (BODY | {"grid": {"lr": [0.1, 0.1]}}, "repeated", "grid.lr"),
    (BODY | {"seeds": 0}, "between 1", "seeds"),
    (BODY | {"seeds": [1, 1]}, "repeated", "seeds"),
    (BODY | {"base": {"preset": "nope"}}, "unknown preset", "preset"),
    (BODY | {"base": {"preset": "mnist-fc", "overrides": {"seed": 3}}}, "seeds", "base.overrides.seed"),
    (BODY | {"grid": {"lr": list(range(1, 600))}}, "at most 1,000", "grid"),
    ({"base": {"preset": "mnist-fc"}, "colour": 1}, "colour", "colour"),
])
def test_bad_sweeps_are_refused_and_store_nothing(client, sent, db_url, body, needle, field):
    before = counts(db_url)
    r = client.post("/sweeps", json=body)
    assert r.status_code == 422, r.json
    assert needle in r.json["error"]["message"], r.json
    assert field in [d["field"] for d in r.json["error"]["details"]], r.json
    assert counts(db_url) == before and sent == []


def test_size_cap_is_cells_times_seeds(client):
    r = client.post("/sweeps", json=BODY | {"grid": {"lr": [0.001 * (i + 1) for i in range(MAX_JOBS // 4 + 1)]},
                                            "seeds": 4})
    assert r.status_code == 422 and "1,004 jobs" in r.json["error"]["message"]


def test_not_json_and_unknown_sweep(client):
    assert client.post("/sweeps", data="x").status_code == 400
    assert client.get("/sweeps/999999").status_code == 404
    assert client.post("/sweeps/999999/cancel").status_code == 404
    assert client.get("/sweeps/999999/results.csv").status_code == 404


def add_result(db_url, job_id: int, accuracy: float) -> None:
    with session_scope(db_url) as s:
        job = s.get(Job, job_id)
        job.status = "succeeded"
        s.add(Result(job_id=job_id, test_accuracy=accuracy, test_loss=1 - accuracy, params=100, epochs=1,
                     train_seconds=2.0, samples_per_second=100, data={}, environment={}, details={}))


def test_cell_statistics_results_csv_and_cancel(client, db_url):
    sweep = client.post("/sweeps", json=BODY | {"grid": {"model_args.n_hidden": [4, 8]}, "seeds": 3}).json
    first, second = (c["job_ids"] for c in sweep["cells"])
    for job_id, acc in zip(first, (0.80, 0.82, 0.84), strict=True):
        add_result(db_url, job_id, acc)
    add_result(db_url, second[0], 0.9)
    out = client.get(f"/sweeps/{sweep['id']}").json
    a, b = out["cells"]
    assert (a["n"], a["succeeded"], a["queued"]) == (3, 3, 0) and a["test_accuracy"]["mean"] == pytest.approx(0.82)
    assert a["test_accuracy"]["std"] == pytest.approx(0.02) and a["test_accuracy"]["ci95"][0] < 0.82
    assert b["n"] == 1 and b["test_accuracy"]["ci95"] is None and b["queued"] == 2
    assert out["counts"] == {"queued": 2, "running": 0, "succeeded": 4, "failed": 0, "cancelled": 0}

    text = client.get(f"/sweeps/{sweep['id']}/results.csv").get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0])[:6] == ["model_args.n_hidden", "seed", "status", "test_accuracy", "test_loss",
                                 "train_seconds"]
    assert len(rows) == 6 and rows[0]["model_args.n_hidden"] == "4" and rows[0]["test_accuracy"] == "0.8"
    assert rows[4]["status"] == "queued" and rows[4]["test_accuracy"] == ""

    r = client.post(f"/sweeps/{sweep['id']}/cancel")
    assert r.status_code == 202 and r.json["cancelled"] == 2 and r.json["counts"]["cancelled"] == 2
    assert client.post(f"/sweeps/{sweep['id']}/cancel").json["cancelled"] == 0
    listed = client.get("/sweeps").json["items"]
    assert listed[0]["id"] == sweep["id"] and listed[0]["counts"]["succeeded"] == 4


def test_jobs_csv_takes_the_list_filters(client):
    sweep = client.post("/sweeps", json=BODY | {"grid": {"lr": [0.05]}, "seeds": 2}).json
    r = client.get(f"/jobs.csv?sweep_id={sweep['id']}&status=queued")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    assert len(rows) == 2 and {row["sweep_id"] for row in rows} == {str(sweep["id"])}
    assert {row["seed"] for row in rows} == {"0", "1"} and rows[0]["cell"] == '{"lr": 0.05}'
    assert client.get("/jobs.csv?status=bogus").status_code == 422


def test_broker_down_stores_the_sweep_and_answers_503(db_url, data_root):
    app = create_app({"DATABASE_URL": db_url, "DATA_DIR": data_root, "BROKER_URL": "redis://127.0.0.1:1/0"})
    r = token_client(app, admin_token(db_url)).post("/sweeps", json=BODY | {"grid": {}, "seeds": 1})
    assert r.status_code == 503 and "broker is unreachable" in r.json["error"]["message"]
    sweep = r.json["error"]["details"]["sweep"]
    assert sweep["jobs"] == 1 and sweep["counts"]["queued"] == 1 and sweep["cells"][0]["label"] == "base"


def test_openapi_lists_the_sweep_routes(client):
    doc = client.get("/openapi.json").json
    for path in ("/sweeps", "/sweeps/{sweep_id}", "/sweeps/{sweep_id}/cancel", "/sweeps/{sweep_id}/results.csv",
                 "/jobs.csv"):
        assert path in doc["paths"], path
    assert "grid" in doc["components"]["schemas"]["SweepCreate"]["properties"]
    assert "ci95" in doc["components"]["schemas"]["CellStats"]["properties"]


@pytest.mark.parametrize("base, needle", [
    ({"preset": "mnist-fc", "spec": {"model": "fc2", "dataset": "mnist"}}, "either a preset"),
    ({"spec": {"model": "fc2", "dataset": "mnist"}, "overrides": {"lr": 0.1}}, "overrides go with a preset"),
    ({}, "either a preset"),
])
def test_base_is_a_preset_or_a_spec(client, db_url, base, needle):
    before = counts(db_url)
    r = client.post("/sweeps", json={"base": base, "grid": {"lr": [0.1]}, "seeds": 1})
    assert r.status_code == 422 and needle in r.json["error"]["message"], r.json
    assert counts(db_url) == before


def test_compare_cells_and_groups_and_cancel_of_running_jobs(client, db_url):
    from shared.store import sweeps
    from shared.store.jobs import NotFound

    sweep = client.post("/sweeps", json=BODY | {"grid": {"model_args.n_hidden": [4, 8]}, "seeds": 3}).json
    first, second = (c["job_ids"] for c in sweep["cells"])
    for job_id, acc in zip(first + second, (0.80, 0.81, 0.82, 0.90, 0.91, 0.92), strict=True):
        add_result(db_url, job_id, acc)
    with session_scope(db_url) as s:
        c = sweeps.compare_cells(s, sweep["id"], 0, 1)
        assert c.clear and c.diff == pytest.approx(0.10) and c.n_a == c.n_b == 3
        assert c.verdict.startswith("model_args.n_hidden=8 is ahead by 10.0 ± ")
        g = sweeps.compare_groups(s, first[:2], second[:2], names=("small", "big"))
        assert g.n_a == 2 and g.verdict.startswith("big is ahead by 10.0")
        with pytest.raises(NotFound):
            sweeps.compare_cells(s, sweep["id"], 0, 5)
        with pytest.raises(NotFound):
            sweeps.compare_groups(s, [first[0], 2**31 - 2], second)

    other = client.post("/sweeps", json=BODY | {"grid": {"lr": [0.05]}, "seeds": 2}).json
    running = other["cells"][0]["job_ids"][0]
    with session_scope(db_url) as s:
        s.get(Job, running).status = "running"
    r = client.post(f"/sweeps/{other['id']}/cancel").json
    assert (r["cancelled"], r["stopping"]) == (1, 1)
    job = client.get(f"/jobs/{running}").json
    assert job["status"] == "running" and job["cancel_requested"] is True  # it stops at its next step boundary


def test_browsers_get_the_pages_and_clients_json(client):
    sweep = client.post("/sweeps", json=BODY | {"grid": {"lr": [0.05, 0.5]}, "seeds": 1}).json
    html = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    page = client.get(f"/sweeps/{sweep['id']}", headers=html)
    assert page.status_code == 200 and page.mimetype == "text/html" and "id=\"cells\"" in page.get_data(as_text=True)
    assert client.get("/sweeps", headers=html).mimetype == "text/html"
    assert client.get(f"/sweeps/{sweep['id']}", headers={"Accept": "*/*"}).json["id"] == sweep["id"]
    missing = client.get("/sweeps/999999", headers=html)
    assert missing.status_code == 404 and missing.mimetype == "text/html"
    assert "sweep 999999 not found" in missing.get_data(as_text=True)
