"""A fleet without a shared disk: workers with scratch directories of their own and one artifact store.

The first worker is SIGKILLed mid-job; the second, on its own "machine", resumes from the checkpoint the first
uploaded, and the API (whose disk never held a checkpoint) serves the files from the store.

Issue 21 item 10 (this test once missed its 240 s on a loaded machine): timing, not a defect. Under 3 busy loops
(load ~9 on 2 cores) the takeover itself took 7 s from the second worker's start to its resumed attempt, the whole
test 80 s against 19 s idle; 2 runs of 3 failed before any kill, on the first POST's 30 s client timeout, while the
API's process imported torch for the submit check (28 s). So the API is warmed before the clock starts, the job is
smaller, and each phase has its own deadline and says which one stalled, with the workers' logs."""

from __future__ import annotations

import hashlib
import os
import shutil
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

from shared.lab.specs import resolve
from shared.train.runnable import check_runnable

LEASE = 6  # seconds; short so the test sees a takeover quickly (production: 60)
JOB = {"preset": "mnist-cnn", "overrides": {"epochs": 3, "train_limit": 1000, "test_limit": 200,
                                            "keep_checkpoints": 3}}  # keep epoch 1: the test checks it


@pytest.fixture
def machines(request, data_root, cache_root, tmp_path, monkeypatch):
    """A database, a broker, one artifact store (S3 on moto, a stand-in for S3/MinIO) and a way to start a worker whose
    scratch directory is its own (`start(name)`)."""
    url, broker = private_backends()
    moto = request.getfixturevalue("moto")  # the database store is tested on both databases in tests/shared/store
    store_env = moto.env | {"CNNLAB_ARTIFACT_STORE": f"{moto.url}/{tmp_path.name}"}
    for name, value in store_env.items():  # the API in this process reads the same store
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CNNLAB_DATABASE_URL", url)
    api_var = tmp_path / "api"
    monkeypatch.setenv("CNNLAB_VAR_DIR", str(api_var))
    api = LiveAPI(url, broker, data_root)
    check_runnable(resolve(JOB["preset"], JOB["overrides"]), data_root)  # torch imported here, not in the first POST
    workers = []

    def start(name: str) -> WorkerProcess:
        var = tmp_path / name  # this "machine's" disk: its database-less var dir and scratch directory
        env = service_env(url, broker, var, data_root, cache_root, CNNLAB_LEASE_SECONDS=str(LEASE),
                          CNNLAB_DISPATCH_SECONDS="2", **store_env)
        var.mkdir()
        workers.append(WorkerProcess(env, tmp_path / f"{name}.log", f"{name}@localhost"))
        workers[-1].var = var
        return workers[-1]

    yield api, start, api_var
    for w in workers:
        w.stop()
    api.close()
    drop_postgres_database(url)


def _until(what: str, done, timeout: float, workers) -> None:
    """Wait for `done()`; past `timeout` fail naming the phase that stalled, with the workers' last log lines."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {w.log.name}\n" + "\n".join(w.log.read_text(errors="replace").splitlines()[-15:])
                             for w in workers)
            pytest.fail(f"stalled: {what} (after {timeout:.0f} s)\n{logs}")
        time.sleep(0.1)


def test_a_job_killed_on_one_machine_resumes_on_another_from_the_store(machines):
    api, start, api_var = machines
    first = start("machine-a")
    job_id = api.post("/jobs", json=JOB).json()["id"]
    checkpoints = lambda: api.get(f"/jobs/{job_id}/checkpoints").json()["items"]  # noqa: E731
    _until("machine a's first checkpoint in the store", checkpoints, 120, [first])
    os.killpg(first.proc.pid, signal.SIGKILL)  # the worker and its pool; its trainer dies with them
    first.proc.wait()
    shutil.rmtree(first.var)  # that machine is gone, disk and all

    second = start("machine-b")
    attempts = lambda: api.get(f"/jobs/{job_id}").json()["attempt_log"]  # noqa: E731
    # The lease lapses, a dispatch round (2 s) sends the job again, machine b claims it: a few rounds, not minutes.
    _until("machine b taking the job over", lambda: len(attempts()) == 2, LEASE + 60, [first, second])
    job = api.wait(job_id, timeout=180)
    assert job["status"] == "succeeded", job
    log = job["attempt_log"]
    assert [a["attempt"] for a in log] == [1, 2], log
    assert log[0]["worker"].startswith("machine-a@") and log[0]["start_epoch"] == 0
    assert log[1]["worker"].startswith("machine-b@") and log[1]["start_epoch"] > 0  # resumed, not redone
    epochs = [m["epoch"] for m in api.get(f"/jobs/{job_id}/metrics").json()["epochs"]]
    assert epochs == [1, 2, 3]  # none done twice
    fetched = second.var / "checkpoints" / str(job_id) / f"epoch-{log[1]['start_epoch']:03d}.pt"
    assert fetched.is_file()  # the checkpoint it resumed from, downloaded from the store onto machine b

    shutil.rmtree(second.var)  # no worker disk holds the files any more; the API's never did
    items = api.get(f"/jobs/{job_id}/checkpoints").json()["items"]
    assert [c["epoch"] for c in items] == [1, 2, 3]
    for ckpt in (items[0], items[-1]):  # one written on machine a, one on machine b
        blob = api.get(f"/jobs/{job_id}/checkpoints/{ckpt['epoch']}")
        assert blob.status_code == 200 and hashlib.sha256(blob.content).hexdigest() == ckpt["sha256"]
    assert not list(api_var.rglob("*.pt"))
    from shared.store import artifacts

    text = artifacts.read_log(job_id)  # both attempts' output, uploaded from machine b
    assert text is not None and text.count("training process started") == 2
