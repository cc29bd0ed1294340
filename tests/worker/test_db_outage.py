"""A database outage mid-job is waited out: the job ends succeeded, with every metric stored (a TCP proxy cut)."""

from __future__ import annotations

import os
import time

from sqlalchemy.engine import make_url
from support import LiveAPI, TCPProxy, WorkerProcess, drop_postgres_database, migrate, new_postgres_database, service_env

OUTAGE = float(os.environ.get("CNNLAB_TEST_OUTAGE_SECONDS", "15"))  # the case is 30 s; CI keeps it short


def test_a_job_outlives_a_database_outage(redis_url, data_root, cache_root, tmp_path):
    url = new_postgres_database()
    migrate(url)
    proxy = TCPProxy(make_url(url).port or 5432)
    via_proxy = make_url(url).set(port=proxy.port).render_as_string(hide_password=False)
    broker = redis_url.rsplit("/", 1)[0] + f"/{int(redis_url.rsplit('/', 1)[1]) - 1}"  # a database of its own
    env = service_env(via_proxy, broker, tmp_path, data_root, cache_root)
    worker = WorkerProcess(env, tmp_path / "worker.log", "outage@localhost")
    api = LiveAPI(url, broker, data_root)  # the API talks to PostgreSQL directly: only the worker's side is cut
    try:
        job = api.post("/jobs", json={"preset": "mnist-cnn", "overrides": {"epochs": 4, "train_limit": 12000,
                                                                         "test_limit": 500}}).json()
        api.wait(job["id"], statuses=("running",))
        time.sleep(1.0)
        proxy.cut()
        time.sleep(OUTAGE)
        proxy.restore()
        done = api.wait(job["id"], timeout=300)
        assert done["status"] == "succeeded" and done["attempts"] == 1, done
        metrics = api.get(f"/jobs/{job['id']}/metrics").json()
        assert [m["epoch"] for m in metrics["epochs"]] == [1, 2, 3, 4]
        logs = (tmp_path / "checkpoints" / str(job["id"]) / "log.txt").read_text() + (tmp_path / "worker.log").read_text()
        # the cut was felt: by the supervisor's heartbeat (every 2 s) or by a write that waited it out
        assert f"heartbeat of job {job['id']} failed" in logs or "waits for the database" in logs
    finally:
        api.close()
        worker.stop()
        proxy.cut()
        drop_postgres_database(url)
