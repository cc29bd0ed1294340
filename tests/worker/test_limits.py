"""A job's run-time limits through a real worker: wall time and memory end the run and fail the job (no retry);
only the newest `keep_checkpoints` checkpoints stay, on disk and in the database."""

from __future__ import annotations

import json

import pytest
import redis
from support import (
    LiveAPI,
    WorkerProcess,
    drop_postgres_database,
    private_backends,
    service_env,
)

SMALL = {"train_limit": 500, "test_limit": 100}


@pytest.fixture(scope="module")
def lab(data_root, cache_root, tmp_path_factory):
    """One worker on a database and a Redis database of their own."""
    url, broker = private_backends()
    var = tmp_path_factory.mktemp("limits")
    api = LiveAPI(url, broker, data_root)
    api.var = var
    worker = WorkerProcess(service_env(url, broker, var, data_root, cache_root), var / "worker.log", "limits@localhost")
    yield api
    worker.stop()
    api.close()
    drop_postgres_database(url)
    redis.Redis.from_url(broker).flushdb()


def submit(lab, preset: str, **overrides) -> int:
    r = lab.post("/jobs", json={"preset": preset, "overrides": SMALL | overrides})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_a_run_past_max_minutes_is_stopped_and_fails(lab):
    job = lab.wait(submit(lab, "mnist-cnn", epochs=200, max_minutes=0.05), timeout=120)  # 3 s
    assert job["status"] == "failed" and job["attempts"] == 1, job
    assert "wall-time limit, max_minutes=0.05" in job["error"], job["error"]


def test_a_run_past_its_memory_is_stopped_and_fails(lab, monkeypatch):
    monkeypatch.setenv("CNNLAB_TRAINER_BASE_GB", "0")  # let the API accept it: the run-time check is tested here
    job = lab.wait(submit(lab, "mnist-fc", epochs=200, memory_gb=0.1), timeout=120)  # torch alone takes more
    assert job["status"] == "failed" and job["attempts"] == 1, job
    assert "GB of memory, above the job's limit of 0.1 GB" in job["error"], job["error"]


def test_only_the_newest_checkpoints_are_kept(lab):
    job_id = submit(lab, "mnist-fc", epochs=4, keep_checkpoints=2)
    assert lab.wait(job_id)["status"] == "succeeded"
    assert [c["epoch"] for c in lab.get(f"/jobs/{job_id}/checkpoints").json()["items"]] == [3, 4]
    assert lab.get(f"/jobs/{job_id}/checkpoints/1").status_code == 404
    assert sorted(p.name for p in (lab.var / "checkpoints" / str(job_id)).glob("epoch-*.pt")) == [
        "epoch-003.pt", "epoch-004.pt"]


def test_memory_gb_above_the_queue_s_is_refused(lab, monkeypatch):
    monkeypatch.setenv("CNNLAB_QUEUE_MEMORY_GB", json.dumps({"cpu": 8, "gpu": 8}))
    r = lab.post("/jobs", json={"preset": "mnist-fc", "overrides": {"memory_gb": 16}})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "memory_gb", r.text
    assert "at most 8 GB" in r.text
