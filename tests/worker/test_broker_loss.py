"""The broker restarts empty: the jobs it lost, and those stored while it was down, still run (own redis-server)."""

from __future__ import annotations

import pytest
from support import (
    LiveAPI,
    RedisServer,
    WorkerProcess,
    drop_postgres_database,
    free_port,
    migrate,
    new_postgres_database,
    service_env,
)


@pytest.fixture
def outage(data_root, cache_root, tmp_path):
    server = RedisServer(free_port())
    url = new_postgres_database()
    migrate(url)
    env = service_env(url, server.url, tmp_path, data_root, cache_root, CNNLAB_DISPATCH_SECONDS="2")
    worker = WorkerProcess(env, tmp_path / "worker.log", "broker-loss@localhost")
    api = LiveAPI(url, server.url, data_root)
    yield api, server, worker
    api.close()
    worker.stop()
    server.kill()
    drop_postgres_database(url)


def test_jobs_lost_with_the_broker_or_stored_while_it_was_down_run_once(outage):
    api, server, worker = outage
    small = {"preset": "mnist-fc", "overrides": {"train_limit": 500, "test_limit": 200}}
    long = {"preset": "mnist-cnn", "overrides": {"train_limit": 6000, "test_limit": 200}}
    running = api.post("/jobs", json=long).json()["id"]
    waiting = api.post("/jobs", json=small).json()["id"]  # behind the long one, in the broker's queue
    api.wait(running, statuses=("running",))
    server.kill()  # the queued message dies with the broker
    during = api.post("/jobs", json=small)
    assert during.status_code == 503
    stored = during.json()["error"]["details"]["job"]["id"]
    server.start()  # empty
    for job_id in (running, waiting, stored):
        job = api.wait(job_id, timeout=240)
        assert job["status"] == "succeeded" and job["attempts"] == 1, job
