"""Graceful drain: a worker told to stop (SIGTERM) finishes or checkpoints its job, gives it back, and exits."""

from __future__ import annotations

import os
import signal
import subprocess
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

from worker.jobfiles import START_MARK
from worker.processes import alive

DRAIN = 4  # seconds a draining worker waits for the job's next checkpoint (production: 60)
EPOCHS = 8


@pytest.fixture
def fleet(data_root, cache_root, tmp_path):
    """Workers of their own: a database and a Redis database apart from the session's `service` worker."""
    url, broker = private_backends()
    env = service_env(url, broker, tmp_path, data_root, cache_root, CNNLAB_DRAIN_SECONDS=str(DRAIN),
                      CNNLAB_DISPATCH_SECONDS="2")
    api = LiveAPI(url, broker, data_root)
    workers: list[WorkerProcess] = []

    def start(name: str) -> WorkerProcess:
        workers.append(WorkerProcess(env, tmp_path / f"{name}.log", f"{name}@localhost"))
        return workers[-1]

    yield api, start, tmp_path
    for w in workers:
        w.stop()
    api.close()
    drop_postgres_database(url)
    redis.Redis.from_url(broker).flushdb()


def warm_trainer(log_path, timeout: float = 120) -> int:
    """The pid of the worker's warm trainer, once it has warmed up (it says so in the worker's log)."""
    deadline = time.monotonic() + timeout
    while "warm in" not in (text := log_path.read_text(errors="replace")):
        assert time.monotonic() < deadline, text
        time.sleep(0.2)
    return int(text.split("cnnlab trainer ", 1)[1].split()[0])


@pytest.mark.parametrize("to", ["main", "group"])
def test_sigterm_mid_job_gives_the_job_back_and_another_worker_resumes_it(fleet, to):
    """SIGTERM to the main process only (as `docker stop` sends it) or to the whole group (Ctrl-C, systemd)."""
    api, start, var = fleet
    first = start("worker-a")
    job_id = api.post("/jobs", json={"preset": "mnist-cnn", "overrides": {
        "epochs": EPOCHS, "train_limit": 2000, "test_limit": 200, "keep_checkpoints": EPOCHS}}).json()["id"]
    deadline = time.monotonic() + 120
    while not api.get(f"/jobs/{job_id}/checkpoints").json()["items"]:  # one epoch done, the next one under way
        assert time.monotonic() < deadline, api.get(f"/jobs/{job_id}").json()
        time.sleep(0.1)
    folder = var / "checkpoints" / str(job_id)
    trainer = int((folder / "rank0.pid").read_text())
    first_epoch = (folder / "epoch-001.pt").stat().st_mtime_ns

    (os.kill if to == "main" else os.killpg)(first.proc.pid, signal.SIGTERM)
    first.proc.wait(timeout=DRAIN + 60)  # it drains and exits on its own: no SIGKILL needed
    assert not alive(trainer)
    left = api.get(f"/jobs/{job_id}").json()
    # Finished meanwhile, or given back after its next checkpoint (or DRAIN seconds): never left `running`.
    assert left["status"] in ("succeeded", "queued"), left
    log = (var / "worker-a.log").read_text()
    assert "Traceback" not in log, log
    if left["status"] == "succeeded":
        return
    assert left["attempts"] == 0 and "queued again" in log, (left, log)  # the drained attempt does not count

    start("worker-b")
    job = api.wait(job_id, timeout=300)
    assert job["status"] == "succeeded", job
    assert job["worker"].startswith("worker-b@localhost") and job["attempts"] == 1, job
    assert [m["epoch"] for m in api.get(f"/jobs/{job_id}/metrics").json()["epochs"]] == list(range(1, EPOCHS + 1))
    assert [c["epoch"] for c in api.get(f"/jobs/{job_id}/checkpoints").json()["items"]] == list(range(1, EPOCHS + 1))
    assert (folder / "log.txt").read_text().count(START_MARK) == 2
    assert (folder / "epoch-001.pt").stat().st_mtime_ns == first_epoch  # resumed, not trained again from scratch


def test_an_idle_worker_and_its_warm_trainer_exit_quietly_on_sigterm(fleet):
    api, start, var = fleet
    idle = start("worker-idle")
    trainer = warm_trainer(var / "worker-idle.log")
    os.killpg(idle.proc.pid, signal.SIGTERM)  # the whole group, as a terminal's Ctrl-C or systemd do
    try:
        idle.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail(f"an idle worker did not exit on SIGTERM:\n{(var / 'worker-idle.log').read_text()}")
    deadline = time.monotonic() + 10
    while alive(trainer):
        assert time.monotonic() < deadline, "the warm trainer outlived its worker"
        time.sleep(0.1)
    log = (var / "worker-idle.log").read_text()
    assert "Traceback" not in log and "Error" not in log, log
    assert log.count("warm in") == 1, log  # no replacement trainer was started while shutting down
