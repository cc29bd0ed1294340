"""The queue page's JSON and the job page's 'why it waits', with real Celery workers over Redis (real HTTP)."""

from __future__ import annotations

import time

import pytest
import redis
from support import (
    LiveAPI,
    WorkerProcess,
    drop_postgres_database,
    private_backends,
    service_env,
)

LONG = {"epochs": 5, "train_limit": 20000, "test_limit": 200}  # keeps the one worker busy while we look
SMALL = {"train_limit": 200, "test_limit": 100}


def poll(fn, timeout: float = 60):
    """fn() until it returns something truthy (the fleet view is cached for up to 5 s)."""
    deadline = time.monotonic() + timeout
    while not (got := fn()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)
    return got


def test_queue_shows_the_worker_what_it_runs_and_the_waiting_order(service):
    api = service
    busy = api.post("/jobs", json={"preset": "mnist-cnn", "overrides": LONG, "name": "busy"}).json()["id"]
    api.wait(busy, statuses=("running",))
    low = api.post("/jobs", json={"preset": "mnist-fc", "overrides": SMALL, "name": "low"}).json()["id"]
    high = api.post("/jobs", json={"preset": "mnist-fc", "overrides": SMALL, "name": "high", "priority": 9}).json()["id"]
    try:
        q = poll(lambda: (d := api.get("/queue?format=json").json()) and any(busy in w["running"] for w in d["workers"])
                 and d)
        assert q["workers_known"] is True
        worker = next(w for w in q["workers"] if busy in w["running"])
        assert worker["name"] == "test-worker-1@localhost" and worker["queues"] == ["cpu", "gpu"]
        mine = [j for j in q["waiting"] if j["id"] in (low, high)]
        assert [j["id"] for j in mine] == [high, low] and mine[0]["position"] < mine[1]["position"]
        cpu = next(x for x in q["queues"] if x["name"] == "cpu")
        assert cpu["depth"] >= 2 and worker["name"] in cpu["workers"]
        page = api.get(f"/results/{low}").text
        assert f"position {mine[1]['position']} in the cpu queue" in page and "every worker of the cpu queue is busy" in page
        html = api.get("/queue", headers={"Accept": "text/html"}).text
        assert "test-worker-1@localhost" in html and f"#{busy}" in html
    finally:
        for job in (low, high, busy):
            api.post(f"/jobs/{job}/cancel")
    assert api.wait(busy)["status"] == "cancelled"


@pytest.fixture
def cpu_only(data_root, cache_root, tmp_path):
    """A fleet of one worker that serves the cpu queue only, on the second Redis database."""
    url, broker = private_backends()
    worker = WorkerProcess(service_env(url, broker, tmp_path, data_root, cache_root), tmp_path / "worker.log",
                           "cpu-only@localhost", queues="cpu")
    api = LiveAPI(url, broker, data_root)
    yield api
    api.close()
    worker.stop()
    redis.Redis.from_url(broker).flushdb()
    drop_postgres_database(url)


def test_cuda_without_a_gpu_worker_is_accepted_with_a_warning_and_the_page_says_why_it_waits(cpu_only):
    api = cpu_only
    r = api.post("/jobs", json={"preset": "mnist-cnn", "overrides": {"device": "cuda", **SMALL}})
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["queue"] == "gpu" and job["status"] == "queued"
    assert [w["field"] for w in job["warnings"]] == ["device"]
    assert "no live worker serves the gpu queue" in job["warnings"][0]["message"]
    q = api.get("/queue", headers={"Accept": "application/json"}).json()
    assert [w["name"] for w in q["workers"]] == ["cpu-only@localhost"]
    gpu = next(x for x in q["queues"] if x["name"] == "gpu")
    assert gpu == {"name": "gpu", "depth": 1, "workers": []}
    assert [j["id"] for j in q["waiting"]] == [job["id"]]
    page = api.get(f"/results/{job['id']}").text
    assert "no live worker serves the gpu queue; position 1 in the gpu queue (next to run)" in page
    cpu = api.post("/jobs", json={"preset": "mnist-cnn", "overrides": SMALL}).json()
    assert cpu["warnings"] == []  # the cpu queue is never asked about (and it is served)
    assert api.wait(cpu["id"])["status"] == "succeeded"
    assert api.get(f"/jobs/{job['id']}").json()["status"] == "queued"
