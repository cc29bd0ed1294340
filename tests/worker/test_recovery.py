"""A worker killed mid-job: its trainer dies with it, another worker takes the job over and resumes it."""

from __future__ import annotations

import os
import signal
import time

import pytest
from support import (
    LiveAPI,
    WorkerProcess,
    drop_postgres_database,
    private_backends,
    service_env,
)

LEASE = 6  # seconds; short so the test sees a takeover quickly (production: 60)


@pytest.fixture
def fleet(data_root, cache_root, tmp_path):
    """Workers of their own: a database and a Redis database apart from the session's `service` worker."""
    url, broker = private_backends()
    env = service_env(url, broker, tmp_path, data_root, cache_root, CNNLAB_LEASE_SECONDS=str(LEASE))
    api = LiveAPI(url, broker, data_root, store=(tmp_path / "artifacts").as_uri())  # the workers' default store
    workers = []
    start = lambda name: workers.append(WorkerProcess(env, tmp_path / f"{name}.log", f"{name}@localhost")) or workers[-1]  # noqa: E731
    yield api, start, tmp_path
    for w in workers:
        w.stop()
    api.close()
    drop_postgres_database(url)


def test_a_killed_worker_s_job_is_taken_over_and_resumed(fleet):
    api, start, var = fleet
    first = start("worker-a")
    job_id = api.post("/jobs", json={"preset": "mnist-cnn", "overrides": {"epochs": 3, "train_limit": 3000,
                                                                         "test_limit": 500, "keep_checkpoints": 3}}).json()["id"]
    deadline = time.monotonic() + 120
    while not api.get(f"/jobs/{job_id}/checkpoints").json()["items"]:  # at least one epoch done
        assert time.monotonic() < deadline, api.get(f"/jobs/{job_id}").json()
        time.sleep(0.1)
    trainer = int((var / "checkpoints" / str(job_id) / "rank0.pid").read_text())

    os.killpg(first.proc.pid, signal.SIGKILL)  # the worker and its pool, not the trainer's own session
    first.proc.wait()
    deadline = time.monotonic() + 10
    while _alive(trainer):
        assert time.monotonic() < deadline, "the trainer outlived its worker"
        time.sleep(0.1)
    assert api.get(f"/jobs/{job_id}").json()["status"] == "running"  # until the lease lapses

    start("worker-b")
    job = api.wait(job_id, timeout=180)
    assert job["status"] == "succeeded", job
    assert job["attempts"] == 2 and job["worker"].startswith("worker-b@localhost")
    epochs = [m["epoch"] for m in api.get(f"/jobs/{job_id}/metrics").json()["epochs"]]
    assert epochs == [1, 2, 3]  # the lost attempt's finished epochs were kept, none was done twice
    assert [c["epoch"] for c in api.get(f"/jobs/{job_id}/checkpoints").json()["items"]] == [1, 2, 3]
    log = (var / "checkpoints" / str(job_id) / "log.txt").read_text()
    assert log.count("training process started") == 2


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split()[2] != "Z"


def test_a_trainer_killed_by_a_signal_resumes_from_its_newest_intact_checkpoint(fleet):
    """SIGKILL (as the OOM killer sends) is infrastructure: the job is queued again and resumes; the newest
    checkpoint, corrupted meanwhile, is skipped for the one before it."""
    api, start, var = fleet
    start("worker-a")
    job_id = api.post("/jobs", json={"preset": "mnist-cnn", "overrides": {"epochs": 4, "keep_checkpoints": 4, "train_limit": 3000,
                                                                         "test_limit": 500}}).json()["id"]
    deadline = time.monotonic() + 180
    while len(api.get(f"/jobs/{job_id}/checkpoints").json()["items"]) < 2:  # two epochs done
        assert time.monotonic() < deadline, api.get(f"/jobs/{job_id}").json()
        time.sleep(0.05)
    job_dir = var / "checkpoints" / str(job_id)
    os.kill(int((job_dir / "rank0.pid").read_text()), signal.SIGKILL)
    newest = max(c["epoch"] for c in api.get(f"/jobs/{job_id}/checkpoints").json()["items"])
    corrupt = job_dir / f"epoch-{newest:03d}.pt"
    corrupt.write_bytes(b"\0" * corrupt.stat().st_size)
    job = api.wait(job_id, timeout=240)
    assert job["status"] == "succeeded" and job["attempts"] == 2, job
    assert [m["epoch"] for m in api.get(f"/jobs/{job_id}/metrics").json()["epochs"]] == [1, 2, 3, 4]
    redone = api.get(f"/jobs/{job_id}/checkpoints/{newest}")  # trained again from the one before: intact
    assert redone.status_code == 200
    assert "is corrupt" in (var / "worker-a.log").read_text()

