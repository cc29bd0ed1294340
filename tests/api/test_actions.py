"""Acting on jobs over real HTTP on SQLite and PostgreSQL: PATCH (name, tags, notes, archived), the tag and archive
filters, DELETE with the job's files, POST /runs. (Deleting a job a real worker trained: tests/worker/test_delete_e2e.py.)"""

from __future__ import annotations

from datetime import timedelta

import pytest
from support import LiveAPI, admin_token

from shared.lab.specs import resolve
from shared.store.artifacts import artifact_key
from shared.store.db import session_scope
from shared.store.jobs import finish
from shared.store.models import Checkpoint, EpochMetric, Job, JobStatus, Result, utcnow


@pytest.fixture(scope="module")
def live(db_url, data_root, tmp_path_factory):
    """The API over HTTP on each database; no broker (these requests never enqueue), its own checkpoint root."""
    api_store = tmp_path_factory.mktemp("artifacts")
    api = LiveAPI(db_url, "redis://127.0.0.1:1/0", data_root, store=api_store.as_uri())
    api.ckpt_root = tmp_path_factory.mktemp("checkpoints")
    api.server.app.config["CHECKPOINT_DIR"] = api.ckpt_root
    api.db_url, api.store_root = db_url, api_store
    yield api
    api.close()


def seed_job(url: str, status: str = "succeeded", name: str | None = None, tags: list[str] | None = None) -> int:
    spec = resolve("mnist-fc", {"train_limit": 500}).model_dump()
    now = utcnow()
    with session_scope(url) as s:
        job = Job(name=name, preset="mnist-fc", model="fc2", dataset="mnist", spec=spec, status=status,
                  tags=tags or [], created_at=now, started_at=now - timedelta(seconds=5), worker="w1",
                  dispatched_at=now, heartbeat_at=now,
                  finished_at=now if status in ("succeeded", "failed", "cancelled") else None)
        s.add(job)
        s.flush()
        return job.id


def patch(api, job_id, body, **kw):
    return api.http.patch(f"{api.url}/jobs/{job_id}", json=body, timeout=30, **kw)  # with the admin token


def delete(api, job_id):
    return api.http.delete(f"{api.url}/jobs/{job_id}", timeout=30)


def test_patch_sets_name_tags_notes_and_answers_the_job(live):
    job_id = seed_job(live.db_url, name="old")
    r = patch(live, job_id, {"name": "baseline lr 0.01", "tags": [" baseline ", "week 3", "baseline", "Ünïcode \"q\""],
                             "notes": "lr looks too high\nsecond line"})
    assert r.status_code == 200, r.text
    job = r.json()
    assert job["id"] == job_id and job["name"] == "baseline lr 0.01"
    assert job["tags"] == ["baseline", "week 3", "Ünïcode \"q\""]  # trimmed, repeats dropped, order kept
    assert job["notes"] == "lr looks too high\nsecond line" and job["status"] == "succeeded"
    assert live.get(f"/jobs/{job_id}").json()["tags"] == job["tags"]
    assert patch(live, job_id, {"tags": []}).json()["tags"] == []
    assert patch(live, job_id, {"name": None}).json()["name"] is None  # null clears the name


@pytest.mark.parametrize("body, status, needle", [
    ({"colour": "red"}, 422, "colour"),
    ({"status": "succeeded"}, 422, "status"),
    ({}, 422, "nothing to change"),
    ({"tags": "baseline"}, 422, "tags"),
    ({"tags": ["a,b"]}, 422, "tags.0"),
    ({"tags": [""]}, 422, "tags.0"),
    ({"tags": ["x" * 65]}, 422, "tags.0"),
    ({"tags": [str(i) for i in range(33)]}, 422, "tags"),
    ({"tags": [3]}, 422, "tags.0"),
    ({"notes": None}, 422, "notes cannot be null"),
    ({"notes": "a\u0000b"}, 422, "notes"),
    ({"archived": "maybe"}, 422, "archived"),
    ([1], 400, "JSON object"),
])
def test_patch_refuses_bad_input_naming_the_field(live, body, status, needle):
    job_id = seed_job(live.db_url, name="keep", tags=["keep"])
    r = patch(live, job_id, body)
    assert r.status_code == status, r.text
    assert needle in r.json()["error"]["message"]
    job = live.get(f"/jobs/{job_id}").json()
    assert (job["name"], job["tags"]) == ("keep", ["keep"])  # nothing changed


def test_patch_and_delete_unknown_job_are_404(live):
    assert patch(live, 2**31 - 2, {"notes": "x"}).status_code == 404
    assert delete(live, 2**31 - 2).status_code == 404


def test_tag_filter_matches_whole_tags_only(live):
    tag = f"t{seed_job(live.db_url)}"  # unique per run: the module's database is shared with other tests
    a = seed_job(live.db_url, tags=[tag, "other"])
    b = seed_job(live.db_url, tags=[f"{tag}-longer"])
    c = seed_job(live.db_url, tags=[f"wk 3 {tag} ü"])
    ids = lambda q: [j["id"] for j in live.get("/jobs", params=q).json()["items"]]  # noqa: E731
    assert ids({"tag": tag}) == [a]
    assert ids({"tag": f"{tag}-longer"}) == [b]
    assert ids({"tag": f"wk 3 {tag} ü"}) == [c]
    assert ids({"tag": tag[:-1]}) == []  # a prefix is not the tag
    assert ids({"tag": '%"'}) == []  # LIKE and JSON metacharacters match nothing, raise nothing
    assert live.get("/jobs", params={"tag": "a,b"}).status_code == 422


def test_archived_jobs_leave_the_default_list_and_come_back(live):
    tag = f"arch{seed_job(live.db_url)}"
    job_id = seed_job(live.db_url, tags=[tag])
    listed = lambda **q: [j["id"] for j in live.get("/jobs", params={"tag": tag, **q}).json()["items"]]  # noqa: E731
    assert listed() == [job_id]
    r = patch(live, job_id, {"archived": True})
    assert r.status_code == 200 and r.json()["archived"] is True
    assert listed() == [] and listed(archived="true") == [job_id]
    assert job_id not in [j["id"] for j in live.get("/jobs", params={"limit": 200}).json()["items"]]
    assert live.get(f"/jobs/{job_id}").status_code == 200  # still there by id
    patch(live, job_id, {"archived": False})
    assert listed() == [job_id] and listed(archived="true") == []


def test_delete_removes_the_job_its_rows_and_its_files(live, tmp_path):
    job_id = seed_job(live.db_url)
    folder = live.ckpt_root / str(job_id)
    folder.mkdir()
    (folder / "log.txt").write_text("trainer output")
    (folder / "epoch-001.pt").write_bytes(b"weights")
    stored = live.store_root / artifact_key(job_id, "epoch-002.pt")  # uploaded by a worker on another machine
    stored.parent.mkdir(parents=True)
    stored.write_bytes(b"weights")
    with session_scope(live.db_url) as s:
        s.add(EpochMetric(job_id=job_id, epoch=1, train_loss=1, test_loss=1, test_accuracy=0.5, seconds=1,
                          train_seconds=1, samples_per_second=1))
        s.add(Checkpoint(job_id=job_id, epoch=2, key=artifact_key(job_id, "epoch-002.pt"), sha256="ab" * 32,
                         size_bytes=7))
        s.add(Result(job_id=job_id, test_accuracy=0.5, test_loss=1, params=1, epochs=1, train_seconds=1,
                     samples_per_second=1, data={}, environment={}, details={}))
    r = delete(live, job_id)
    assert r.status_code == 204, r.text
    assert live.get(f"/jobs/{job_id}").status_code == 404
    assert not folder.exists() and not stored.exists()
    with session_scope(live.db_url) as s:
        assert s.query(EpochMetric).filter_by(job_id=job_id).count() == 0
        assert s.query(Checkpoint).filter_by(job_id=job_id).count() == 0
        assert s.get(Result, job_id) is None
    assert delete(live, job_id).status_code == 404


@pytest.mark.parametrize("status", ["queued", "running"])
def test_delete_refuses_an_active_job_until_it_is_cancelled(live, status):
    job_id = seed_job(live.db_url, status=status)
    (live.ckpt_root / str(job_id)).mkdir()
    r = delete(live, job_id)
    assert r.status_code == 409 and "cancel it first" in r.json()["error"]["message"]
    assert live.get(f"/jobs/{job_id}").json()["status"] == status
    assert (live.ckpt_root / str(job_id)).is_dir()
    assert live.post(f"/jobs/{job_id}/cancel").status_code == 202
    if status == "running":  # asked to stop: refused until its worker ends it
        assert delete(live, job_id).status_code == 409
        with session_scope(live.db_url) as s:
            assert finish(s, job_id, "w1", JobStatus.CANCELLED)
    assert delete(live, job_id).status_code == 204
    assert not (live.ckpt_root / str(job_id)).exists()


def local_run(**extra) -> dict:
    spec = resolve("mnist-fc", {"train_limit": 500}).model_dump(mode="json")
    epoch = {"epoch": 1, "train_loss": 0.9, "test_loss": 0.5, "test_accuracy": 0.81, "seconds": 2.0,
             "train_seconds": 1.5, "samples_per_second": 333.0}
    result = {"test_accuracy": 0.81, "test_loss": 0.5, "params": 6442, "epochs": 1, "train_seconds": 1.5,
              "samples_per_second": 333.0, "data": {"name": "mnist"}, "environment": {"device": "cpu"}}
    return {"preset": "mnist-fc", "name": "on my laptop", "tags": ["local"], "spec": spec, "host": "laptop:42",
            "started_at": "2026-11-28T10:00:00+00:00", "finished_at": "2026-11-28T10:00:03+00:00",
            "result": result, "epochs": [epoch], "steps": [{"epoch": 1, "step": 5, "global_step": 5, "loss": 1.2}],
            "confusion": [[1, 0], [0, 1]], "misclassified": [{"index": 3, "label": 1, "predicted": 0}]} | extra


def test_post_runs_records_a_finished_local_run(live):
    r = live.post("/runs", json=local_run(), headers={"Idempotency-Key": f"run-{seed_job(live.db_url)}"})
    assert r.status_code == 201, r.text
    job = r.json()
    assert (job["status"], job["queue"], job["worker"], job["tags"]) == ("succeeded", "local", "laptop:42", ["local"])
    assert job["result"]["test_accuracy"] == 0.81 and job["test_accuracy"] == 0.81
    assert job["id"] in [j["id"] for j in live.get("/jobs", params={"tag": "local"}).json()["items"]]
    metrics = live.get(f"/jobs/{job['id']}/metrics").json()
    assert [m["test_accuracy"] for m in metrics["epochs"]] == [0.81] and metrics["steps"][0]["loss"] == 1.2
    assert live.get(f"/results/{job['id']}").status_code == 200
    again = live.post("/runs", json=local_run(), headers={"Idempotency-Key": r.request.headers["Idempotency-Key"]})
    assert again.status_code == 200 and again.json()["id"] == job["id"]


@pytest.mark.parametrize("change, needle", [({"spec": {"model": "nope"}}, "spec"), ({"host": None}, "host"),
                                            ({"status": "failed"}, "status"), ({"epochs": [{"epoch": 1}]}, "epochs.0"),
                                            ({"finished_at": "2026-11-28T09:00:00+00:00"}, "before started_at"),
                                            ({"finished_at": "2026-11-28T10:00:03"}, None),  # no offset: UTC, a 201
                                            # schemathesis: ints past the INTEGER columns were a 500 (OverflowError)
                                            ({"steps": [{"epoch": 1, "step": 2**40, "global_step": 5, "loss": 1.0}]},
                                             "steps.0.step"),
                                            ({"result": local_run()["result"] | {"params": 2**40}}, "result.params")])
def test_post_runs_refuses_bad_records(live, change, needle):
    r = live.post("/runs", json=local_run(**change))
    if needle is None:
        assert r.status_code == 201, r.text
        return
    assert r.status_code == 422 and needle in r.json()["error"]["message"], r.text


@pytest.mark.parametrize("epochs, needle", [([1, 1], "epoch number is repeated"), ([-1], "start at 1"),
                                            ([0, 1], "start at 1")])
def test_post_runs_refuses_repeated_or_negative_epochs(live, epochs, needle):
    """The probe's 500: a repeated epoch number reached the database's unique index; now a 422 naming `epochs`."""
    rows = [local_run()["epochs"][0] | {"epoch": n} for n in epochs]
    r = live.post("/runs", json=local_run(epochs=rows))
    assert r.status_code == 422 and needle in r.json()["error"]["message"] and "epochs" in r.text, r.text


def test_post_runs_refuses_repeated_steps(live):
    step = local_run()["steps"][0]
    r = live.post("/runs", json=local_run(steps=[step, step | {"loss": 0.9}]))
    assert r.status_code == 422 and "steps" in r.json()["error"]["message"], r.text


def test_every_integrity_error_is_a_4xx_naming_the_field(db_url, data_root, artifact_store):
    """Whatever a constraint refuses (here a repeated epoch row, written past validation) answers 409, not 500."""
    from api import create_app

    app = create_app({"DATABASE_URL": db_url, "DATA_DIR": data_root, "BROKER_URL": "redis://127.0.0.1:1/0"})
    job_id = seed_job(db_url)
    row = {"job_id": job_id, "epoch": 1, "train_loss": 1.0, "test_loss": 1.0, "test_accuracy": 0.5, "seconds": 1.0,
           "train_seconds": 1.0, "samples_per_second": 1.0}

    @app.post("/_twice")
    def _twice():
        with session_scope(db_url) as s:
            s.add_all([EpochMetric(**row), EpochMetric(**row)])
        return "", 204

    r = app.test_client().post("/_twice", headers={"Authorization": f"Bearer {admin_token(db_url)}"})
    assert r.status_code == 409 and "epoch" in r.json["error"]["message"], r.data
    assert {"field": "epoch"} in r.json["error"]["details"] or {"field": "epoch_metrics.epoch"} in r.json["error"][
        "details"], r.json


def test_openapi_documents_the_actions(live):
    doc = live.get("/openapi.json").json()
    assert {"get", "patch", "delete"} <= set(doc["paths"]["/jobs/{job_id}"])
    assert "post" in doc["paths"]["/runs"]
    schemas = doc["components"]["schemas"]
    assert set(schemas["JobPatch"]["properties"]) == {"name", "tags", "notes", "archived"}
    assert schemas["JobPatch"]["additionalProperties"] is False
    assert {"tags", "archived", "notes"} <= set(schemas["JobOut"]["properties"])
    params = {p["name"] for p in doc["paths"]["/jobs"]["get"]["parameters"]}
    assert {"tag", "archived"} <= params
