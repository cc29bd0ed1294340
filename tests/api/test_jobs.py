"""The JSON API on both databases, through Flask's test client; the broker is replaced by a recorder."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update
from support import admin_token, new_token, token_client

from api import create_app
from shared.store import publish
from shared.store.db import session_scope
from shared.store.jobs import claim, finish
from shared.store.models import Job, utcnow


def test_create_from_preset_with_overrides(client, sent):
    r = client.post("/jobs", json={"preset": "mnist-cnn", "overrides": {"train_limit": 500, "model_args.n_feature": 4},
                                   "name": "small", "priority": 7})
    assert r.status_code == 201, r.json
    job = r.json
    assert r.headers["Location"].endswith(f"/jobs/{job['id']}")
    assert job["status"] == "queued" and job["name"] == "small" and job["preset"] == "mnist-cnn"
    assert job["spec"]["train_limit"] == 500 and job["spec"]["model_args"] == {"n_feature": 4}
    assert job["spec"]["lr"] == 0.01 and job["spec"]["momentum"] == 0.5  # the preset's values kept
    assert job["created_at"].endswith("+00:00")
    assert sent[-1][:3] == (job["id"], "cpu", 7)


def test_create_from_full_spec_and_gpu_queue(client, sent):
    spec = {"model": "lenet", "dataset": "cifar10", "optimizer": "adam", "lr": 0.001, "device": "cuda"}
    r = client.post("/jobs", json={"spec": spec})
    assert r.status_code == 201, r.json
    assert r.json["preset"] is None and r.json["queue"] == "gpu" and r.json["spec"]["epochs"] == 1
    assert sent[-1][1] == "gpu"


@pytest.mark.parametrize("body, status, needle", [
    ({"preset": "nope"}, 422, "unknown preset"),
    ({"preset": "mnist-cnn", "overrides": {"epochs": 0}}, 422, "epochs"),
    ({"preset": "mnist-cnn", "overrides": {"lr": "fast"}}, 422, "lr"),
    ({"preset": "mnist-cnn", "overrides": {"colour": "red"}}, 422, "colour"),
    ({"preset": "mnist-cnn", "overrides": {"model_args.n_layers": 3}}, 422, "n_layers"),
    ({"preset": "mnist-cnn", "overrides": {"model": "vgg"}}, 422, "32x32"),
    ({"preset": "mnist-cnn", "overrides": {"dataset": "../etc"}}, 422, "dataset"),
    ({"preset": "mnist-cnn", "overrides": {"dataset": "no-such-set"}}, 422, "not found"),
    ({"preset": "mnist-cnn", "spec": {"model": "cnn"}}, 422, "either a preset"),
    ({"preset": "mnist-cnn", "priority": 11}, 422, "priority"),
    ({"preset": "mnist-cnn", "extra": 1}, 422, "extra"),
    ({}, 422, "preset"),
    ([1, 2], 400, "JSON object"),
    ({"preset": "mnist-cnn", "overrides": {"mean": [float("nan")], "std": [1]}}, 422, "finite"),
    ({"preset": "mnist-cnn", "name": "a\u0000b"}, 422, "name"),
    ({"preset": "mnist-fc", "overrides": {"model_args.n_hidden": -3}}, 422, "negative dimension"),
    ({"preset": "mnist-cnn", "overrides": {"model_args.n_feature": 0}}, 422, "no weights"),
    ({"preset": "cifar10-vgg", "overrides": {"model_args.cfg": [1000000]}}, 422, "at most"),
    ({"preset": "mnist-cnn", "overrides": {"mean": [0.1, 0.2, 0.3], "std": [1, 1, 1]}}, 422, "1 channels"),
    ({"preset": "mnist-cnn", "overrides": {"seed": 2**63}}, 422, "seed"),
    ({"preset": "mnist-cnn", "overrides": {"model_args.n_feature": 2000, "batch_size": 65536}}, 422, "needs about 7"),
    ({"preset": "mnist-cnn", "overrides": {"world_size": 64}}, 422, "at most"),
    ({"preset": "mnist-cnn", "overrides": {"precision": "fp16"}}, 422, "precision: fp16 needs device cuda"),
])
def test_bad_input_is_a_4xx_naming_the_problem(client, sent, body, status, needle):
    r = client.post("/jobs", json=body)
    assert r.status_code == status, r.json
    assert needle in r.json["error"]["message"]
    assert not sent


def test_hostile_queries_and_ids_are_4xx(client):
    for path in ("/jobs/3000000000", "/jobs/99999999999999999999/metrics", "/results/99999999999",
                 "/jobs/-1", "/jobs/1/checkpoints/99999999999"):
        assert client.get(path).status_code == 404, path
    assert client.post("/jobs/99999999999/cancel").status_code == 404
    for path in ("/jobs?offset=99999999999999999999", "/jobs?preset=a%00b", "/jobs?status=bogus", "/jobs?limit=²"):
        assert client.get(path).status_code == 422, path
    for path in ("/?offset=²", "/?limit=999", "/?status=bogus", "/compare?ids=1,²", "/compare?ids=99999999999"):
        assert client.get(path).status_code == 400, path


def test_malformed_and_oversized_bodies(client):
    assert client.post("/jobs", data="{not json", content_type="application/json").status_code == 400
    assert client.post("/jobs", data="x", content_type="text/plain").status_code == 400
    deep = "[" * 5000 + "]" * 5000  # 10 KB, but too deep for Python's JSON parser
    assert client.post("/jobs", data=deep, content_type="application/json").status_code == 400
    big = client.post("/jobs", data="[" + "1," * 40000 + "1]", content_type="application/json")
    assert big.status_code == 413 and "error" in big.json


def test_unknown_job_and_routes_are_json_404s(client):
    for path in ("/jobs/999999", "/jobs/999999/metrics", "/jobs/999999/checkpoints", "/nowhere"):
        r = client.get(path)
        assert r.status_code == 404 and "error" in r.json, path
    assert client.post("/jobs/999999/cancel").status_code == 404
    assert client.delete("/jobs").status_code == 405


def test_list_filters_and_pagination(client):
    ids = [client.post("/jobs", json={"preset": p, "overrides": {"train_limit": 100}}).json["id"]
           for p in ("mnist-fc", "mnist-cnn", "mnist-cnn")]
    page = client.get("/jobs?preset=mnist-cnn&limit=1").json
    assert page["total"] >= 2 and len(page["items"]) == 1
    assert page["items"][0]["id"] == ids[2]  # newest first
    assert page["next"] and "offset=1" in page["next"]
    second = client.get(page["next"]).json
    assert second["items"][0]["id"] == ids[1]
    assert all(j["model"] == "fc2" for j in client.get("/jobs?model=fc2").json["items"])
    assert client.get("/jobs?status=bogus").status_code == 422
    assert client.get("/jobs?limit=0").status_code == 422
    assert client.get("/jobs?limit=abc").status_code == 422


def test_cancel_queued_then_conflict(client):
    job = client.post("/jobs", json={"preset": "mnist-fc"}).json
    r = client.post(f"/jobs/{job['id']}/cancel")
    assert r.status_code == 202 and r.json["status"] == "cancelled"
    again = client.post(f"/jobs/{job['id']}/cancel")
    assert again.status_code == 409 and "already cancelled" in again.json["error"]["message"]


def test_cancel_running_sets_the_flag_and_blocks_a_claim(client, db_url):
    job_id = client.post("/jobs", json={"preset": "mnist-fc"}).json["id"]
    with session_scope(db_url) as s:
        assert claim(s, job_id, "w1") is not None
        assert claim(s, job_id, "w2") is None  # a duplicate delivery does nothing
    r = client.post(f"/jobs/{job_id}/cancel")
    assert r.status_code == 202 and r.json["status"] == "running" and r.json["cancel_requested"]
    with session_scope(db_url) as s:
        assert not finish(s, job_id, "w2", "succeeded")  # only the owner ends it
        assert finish(s, job_id, "w1", "cancelled")
    assert client.get(f"/jobs/{job_id}").json["status"] == "cancelled"


def test_broker_down_is_a_503_and_the_job_stays_queued(db_url, data_root):
    app = create_app({"DATABASE_URL": db_url, "DATA_DIR": data_root, "BROKER_URL": "redis://127.0.0.1:1/0"})
    r = token_client(app, admin_token(db_url)).post("/jobs", json={"preset": "mnist-fc"})
    assert r.status_code == 503 and "broker" in r.json["error"]["message"]
    job_id = r.json["error"]["details"]["job"]["id"]
    assert app.test_client().get(f"/jobs/{job_id}").json["status"] == "queued"


def test_presets_openapi_and_health(client):
    presets = {p["name"]: p["spec"] for p in client.get("/presets").json["items"]}
    assert presets["cifar10-vgg"]["batch_size"] == 128 and presets["cifar10-vgg"]["augment"] is True
    doc = client.get("/openapi.json").json
    assert doc["openapi"].startswith("3.")
    for path in ("/jobs", "/jobs/{job_id}", "/jobs/{job_id}/metrics", "/jobs/{job_id}/cancel",
                 "/jobs/{job_id}/checkpoints", "/jobs/{job_id}/checkpoints/{epoch}", "/presets", "/healthz"):
        assert path in doc["paths"], path
    assert "epochs" in doc["components"]["schemas"]["Spec"]["properties"]
    health = client.get("/healthz")  # the broker URL here points at a closed port
    assert health.status_code == 503 and health.json["database"] == "ok" and health.json["broker"] != "ok"


def test_an_orphaned_job_that_was_asked_to_cancel_is_ended_by_the_next_claim(client, db_url):
    job_id = client.post("/jobs", json={"preset": "mnist-fc"}).json["id"]
    with session_scope(db_url) as s:
        assert claim(s, job_id, "w1") is not None
    client.post(f"/jobs/{job_id}/cancel")
    with session_scope(db_url) as s:  # w1 dies: its lease lapses
        s.execute(update(Job).where(Job.id == job_id).values(heartbeat_at=utcnow() - timedelta(minutes=5)))
    with session_scope(db_url) as s:
        assert claim(s, job_id, "w2", lease=60) is None
    job = client.get(f"/jobs/{job_id}").json
    assert job["status"] == "cancelled" and job["finished_at"] and job["worker"] == "w1"


def test_an_orphaned_job_is_claimed_again(client, db_url):
    job_id = client.post("/jobs", json={"preset": "mnist-fc"}).json["id"]
    with session_scope(db_url) as s:
        assert claim(s, job_id, "w1") is not None
        assert claim(s, job_id, "w2", lease=60) is None  # w1's lease is live
        s.execute(update(Job).where(Job.id == job_id).values(heartbeat_at=utcnow() - timedelta(minutes=5)))
        s.commit()
        again = claim(s, job_id, "w2", lease=60)
        assert again is not None and again.worker == "w2" and again.attempts == 2


def test_a_database_that_refuses_connections_is_a_fast_503_with_retry_after(data_root):
    """A PostgreSQL URL where nothing listens: every endpoint that needs the database answers 503, quickly."""
    import time

    app = create_app({"DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/nothing",
                      "BROKER_URL": "redis://127.0.0.1:1/0", "DATA_DIR": data_root})
    client = token_client(app, "any-token")  # checking it needs the database too: 503, not 401
    for method, path, body in (("get", "/jobs", None), ("get", "/jobs/1", None),
                               ("post", "/jobs", {"preset": "mnist-fc"}), ("get", "/", None)):
        t = time.monotonic()
        r = getattr(client, method)(path, json=body)
        assert r.status_code == 503, (path, r.status_code, r.data[:200])
        assert r.headers["Retry-After"] == "5" and time.monotonic() - t < 10
        assert b"database is unavailable" in r.data  # JSON for the API, a page for people


def test_a_retried_post_with_an_idempotency_key_finds_its_job(db_url, data_root):
    """Broker down: the POST is answered 503 with the stored job; the retry with the same key gets that job."""
    import uuid

    app = create_app({"DATABASE_URL": db_url, "DATA_DIR": data_root, "BROKER_URL": "redis://127.0.0.1:1/0"})
    client, key = token_client(app, admin_token(db_url)), {"Idempotency-Key": uuid.uuid4().hex}
    first = client.post("/jobs", json={"preset": "mnist-fc", "name": "once"}, headers=key)
    assert first.status_code == 503
    job_id = first.json["error"]["details"]["job"]["id"]
    again = client.post("/jobs", json={"preset": "mnist-fc", "name": "once"}, headers=key)
    assert again.status_code == 503 and again.json["error"]["details"]["job"]["id"] == job_id  # re-sent, not re-made
    other = client.post("/jobs", json={"preset": "mnist-cnn", "name": "once"}, headers=key)
    assert other.status_code == 409 and "another request" in other.json["error"]["message"]
    with session_scope(db_url) as s:  # stored within its token (hashed), so one job holds it
        assert s.query(Job).filter(Job.idempotency_key == s.get(Job, job_id).idempotency_key).count() == 1


def test_an_idempotency_key_is_scoped_to_its_token(app, db_url, sent):
    """The probe: another token reusing a key got the first token's job back; now it gets a job of its own."""
    alice, bob = (token_client(app, new_token(db_url)[1]) for _ in range(2))
    key = {"Idempotency-Key": "shared-key-1"}
    mine = alice.post("/jobs", json={"preset": "mnist-fc"}, headers=key)
    theirs = bob.post("/jobs", json={"preset": "mnist-fc"}, headers=key)
    assert mine.status_code == theirs.status_code == 201, (mine.json, theirs.json)
    assert mine.json["id"] != theirs.json["id"]
    other = bob.post("/jobs", json={"preset": "mnist-cnn"}, headers={"Idempotency-Key": "alice-key-2"})
    alice_other = alice.post("/jobs", json={"preset": "mnist-fc"}, headers={"Idempotency-Key": "alice-key-2"})
    assert other.status_code == alice_other.status_code == 201  # neither a 409 nor another's job id
    assert alice.post("/jobs", json={"preset": "mnist-fc"}, headers=key).json["id"] == mine.json["id"]


def test_an_idempotency_key_of_a_started_job_answers_200_without_enqueueing(client, sent, db_url):
    key = {"Idempotency-Key": "k-" + "x" * 20}
    created = client.post("/jobs", json={"preset": "mnist-fc"}, headers=key)
    assert created.status_code == 201 and len(sent) == 1
    with session_scope(db_url) as s:
        s.execute(update(Job).where(Job.id == created.json["id"]).values(status="running"))
    again = client.post("/jobs", json={"preset": "mnist-fc"}, headers=key)
    assert again.status_code == 200 and again.json["id"] == created.json["id"] and len(sent) == 1
    assert client.post("/jobs", json={"preset": "mnist-fc"}, headers={"Idempotency-Key": ""}).status_code == 400


def test_a_corrupt_checkpoint_is_never_served(client, db_url, tmp_path, artifact_store):
    import hashlib
    from pathlib import Path
    from urllib.parse import urlparse

    from shared.store import artifacts
    from shared.store.models import Checkpoint

    job_id = client.post("/jobs", json={"preset": "mnist-fc"}).json["id"]
    path = tmp_path / "epoch-001.pt"
    path.write_bytes(b"weights" * 100)
    key = artifacts.artifact_key(job_id, path.name)
    artifacts.upload(path, key)
    with session_scope(db_url) as s:
        s.add(Checkpoint(job_id=job_id, epoch=1, key=key, size_bytes=700,
                         sha256=hashlib.sha256(path.read_bytes()).hexdigest()))
    ok = client.get(f"/jobs/{job_id}/checkpoints/1")
    assert ok.status_code == 200 and ok.data == path.read_bytes()
    assert ok.headers["Content-Disposition"] == f"attachment; filename=job{job_id}-epoch001.pt"
    stored = Path(urlparse(artifact_store).path) / key
    stored.write_bytes(b"weightz" * 100)  # same size, one byte per block changed
    r = client.get(f"/jobs/{job_id}/checkpoints/1")
    assert r.status_code == 410 and "corrupt" in r.json["error"]["message"]
    stored.unlink()
    gone = client.get(f"/jobs/{job_id}/checkpoints/1")
    assert gone.status_code == 410 and "no longer in the artifact store" in gone.json["error"]["message"]


def test_prometheus_metrics_count_jobs_by_status_and_queue(client, db_url):
    from prometheus_client.parser import text_string_to_metric_families

    ids = [client.post("/jobs", json={"preset": "mnist-fc"}).json["id"] for _ in range(3)]
    with session_scope(db_url) as s:
        s.execute(update(Job).where(Job.id == ids[0]).values(status="running", heartbeat_at=utcnow(), worker="w1",
                                                             attempts=2))
    r = client.get("/metrics")
    assert r.status_code == 200 and r.mimetype == "text/plain"
    families = {f.name: f for f in text_string_to_metric_families(r.get_data(as_text=True))}
    jobs = {(x.labels["status"], x.labels["queue"]): x.value for x in families["cnnlab_jobs"].samples}
    with session_scope(db_url) as s:  # the database may hold other tests' jobs: compare with its own counts
        queued = s.query(Job).filter(Job.status == "queued", Job.queue == "cpu").count()
        retries = sum(j.attempts - 1 for j in s.query(Job).filter(Job.attempts > 1))
    assert jobs[("queued", "cpu")] == queued >= 2 and jobs[("running", "cpu")] >= 1
    assert {x.labels["queue"]: x.value for x in families["cnnlab_queue_depth"].samples}["cpu"] == queued
    assert families["cnnlab_job_retries"].samples[0].value == retries >= 1
    assert "w1" in {x.labels["worker"] for x in families["cnnlab_worker_heartbeat_age_seconds"].samples}
    assert {"cnnlab_job_seconds", "cnnlab_epoch_seconds"} <= set(families)


def test_celery_sends_task_events_for_flower():
    app = publish.make_celery("redis://127.0.0.1:1/0")
    assert app.conf.worker_send_task_events and app.conf.task_send_sent_event


def test_memory_limits_are_per_queue_and_name_what_a_job_needs(client, sent, monkeypatch):
    """The lab's VGG needs its weights, activations and data plus the trainer itself (CNNLAB_TRAINER_BASE_GB):
    refused where the queue allows 0.25 GB, accepted half a GB above the estimate."""
    from shared.lab.specs import resolve
    from shared.train.memory import estimate

    need = estimate(resolve("cifar10-vgg", {"dataset": "cifar10-jpeg"}), (3, 32, 32), 10).total_gb
    spec = {"preset": "cifar10-vgg", "overrides": {"dataset": "cifar10-jpeg"}}
    monkeypatch.setenv("CNNLAB_QUEUE_MEMORY_GB", '{"cpu": 0.25}')
    r = client.post("/jobs", json=spec)
    message = r.json["error"]["message"]
    assert r.status_code == 422 and f"needs about {need:,.1f} GB" in message and "0.25 GB" in message, message
    monkeypatch.setenv("CNNLAB_QUEUE_MEMORY_GB", f'{{"cpu": {need + 0.5:.1f}}}')
    assert client.post("/jobs", json=spec).status_code == 201


def test_get_job_shows_its_attempt_log_in_order_and_openapi_describes_it(client, db_url):
    from shared.store import jobs as job_services

    job_id = client.post("/jobs", json={"preset": "mnist-fc"}).json["id"]
    assert client.get(f"/jobs/{job_id}").json["attempt_log"] == []
    with session_scope(db_url) as s:
        job_services.record_attempt(s, job_id, 2, "machine-b@host:22", 3)
        job_services.record_attempt(s, job_id, 1, "machine-a@host:11", 0)
    with session_scope(db_url) as s:  # written again after a lost commit: the same row, not a second one
        job_services.record_attempt(s, job_id, 2, "machine-b@host:22", 3)
    log = client.get(f"/jobs/{job_id}").json["attempt_log"]
    assert [(a["attempt"], a["worker"], a["start_epoch"]) for a in log] == [
        (1, "machine-a@host:11", 0), (2, "machine-b@host:22", 3)]
    assert all(a["started_at"].endswith("Z") or "+00:00" in a["started_at"] for a in log)
    schemas = client.get("/openapi.json").json["components"]["schemas"]
    assert "attempt_log" in schemas["JobOut"]["required"]
    assert set(schemas["AttemptOut"]["properties"]) == {"attempt", "worker", "started_at", "start_epoch"}


def test_world_size_above_every_live_workers_gpus_is_a_422_naming_both_numbers(client, sent, monkeypatch):
    """The heartbeats say how many GPUs each worker has: more ranks than any live worker of the queue has GPUs is
    refused (jobs and sweeps); with no live worker the job is accepted and its `waiting` says what it lacks."""
    from shared.store import fleet

    beats = [{"name": "g1", "queues": ["gpu"], "datasets": ["cifar10-jpeg"], "data_dir": "d", "gpus": 1},
             {"name": "c", "queues": ["cpu"], "datasets": ["cifar10-jpeg"], "data_dir": "d", "gpus": 0}]
    monkeypatch.setattr(fleet, "reports", lambda url: beats)
    spec = {"preset": "cifar10-lenet", "overrides": {"dataset": "cifar10-jpeg", "device": "cuda", "world_size": 2}}
    for path, body in (("/jobs", spec), ("/sweeps", {"base": spec, "grid": {"lr": [0.01, 0.02]}, "seeds": 1})):
        r = client.post(path, json=body)
        assert r.status_code == 422, r.json
        detail = r.json["error"]["details"][0]
        assert detail["field"] == "world_size" and "world_size 2 needs 2 GPUs" in detail["message"], detail
        assert "the live worker of the gpu queue with the most has 1" in detail["message"], detail
    assert sent == []
    ok = {"preset": "cifar10-lenet", "overrides": {"dataset": "cifar10-jpeg", "device": "cuda"}}
    assert client.post("/jobs", json=ok).status_code == 201  # one rank fits the 1-GPU worker
    monkeypatch.setattr(fleet, "reports", lambda url: [])
    r = client.post("/jobs", json=spec)
    assert r.status_code == 201, r.json
    waiting = client.get(f"/jobs/{r.json['id']}").json["waiting"]
    assert waiting.startswith("no live worker of the gpu queue has the 2 GPUs world_size 2 needs (none is live)")
    page = client.get(f"/results/{r.json['id']}").get_data(as_text=True)
    assert "Waiting: no live worker of the gpu queue has the 2 GPUs world_size 2 needs" in page
