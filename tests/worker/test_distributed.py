"""DDP jobs through the service (gloo on CPU), a second worker on the same queue, and a rank that dies."""

from __future__ import annotations

import os
import signal
import time

import pytest
from support import WorkerProcess

from shared.store.publish import TASK_RUN_JOB, make_celery

CIFAR = {"dataset": "cifar10-jpeg", "train_limit": 2000, "test_limit": 1000, "epochs": 2}


@pytest.fixture(scope="module")
def cifar(data_root):
    if not (data_root / "cifar10-jpeg" / "train").is_dir():
        pytest.skip(f"no cifar10-jpeg under {data_root}")


def test_world_size_2_matches_world_size_1(service, cifar):
    jobs = {ws: service.post("/jobs", json={"preset": "cifar10-lenet", "overrides": CIFAR | {"world_size": ws}})
            .json()["id"] for ws in (1, 2)}
    done = {ws: service.wait(job_id, timeout=300) for ws, job_id in jobs.items()}
    assert all(j["status"] == "succeeded" for j in done.values()), done
    env = done[2]["result"]["environment"]
    assert env["world_size"] == 2 and env["backend"] == "gloo" and len(env["devices"]) == 2
    assert done[1]["result"]["environment"]["world_size"] == 1

    # Rank 0 alone writes: one row per epoch and per logged step, not one per rank.
    metrics = service.get(f"/jobs/{jobs[2]}/metrics").json()
    assert [m["epoch"] for m in metrics["epochs"]] == [1, 2]
    # 2 x 32 steps: by default a point every round(64 / 100) = 1 steps
    assert len(metrics["steps"]) == len({(s["epoch"], s["step"]) for s in metrics["steps"]}) == 64
    assert [p["samples_seen"] for p in metrics["evals"] if p["full"]] == [2000, 4000]
    assert [c["epoch"] for c in service.get(f"/jobs/{jobs[2]}/checkpoints").json()["items"]] == [1, 2]

    # Both runs see the same global batches (each rank takes half of every batch of 64) and LeNet has no
    # BatchNorm, so they differ only by float summation order in the gradient all-reduce. After 64 steps
    # that drift flips a few test predictions: allow 3 points (30 of the 1,000 test images).
    acc = {ws: j["result"]["test_accuracy"] for ws, j in done.items()}
    assert acc[1] > 0.2 and abs(acc[1] - acc[2]) <= 0.03, acc
    loss = {ws: service.get(f"/jobs/{jobs[ws]}/metrics").json()["epochs"][-1]["train_loss"] for ws in (1, 2)}
    assert abs(loss[1] - loss[2]) < 0.05, loss


def test_two_workers_run_ten_jobs_each_exactly_once(service):
    second = WorkerProcess(service.env, service.var / "worker2.log", "test-worker-2@localhost")
    try:
        ids = [service.post("/jobs", json={"preset": "mnist-fc", "overrides": {"train_limit": 500, "test_limit": 200}})
               .json()["id"] for _ in range(10)]
        # Deliver every job a second time too: only the claim in the database decides who runs it.
        broker = make_celery(service.env["CNNLAB_REDIS_URL"])
        for job_id in ids:
            broker.send_task(TASK_RUN_JOB, args=[job_id], queue="cpu")
        done = [service.wait(job_id, timeout=300) for job_id in ids]
    finally:
        second.stop()
    assert [j["status"] for j in done] == ["succeeded"] * 10
    assert [j["attempts"] for j in done] == [1] * 10  # claimed once each
    for j in done:  # and trained once each: one training process start in the job's log
        log = (service.var / "checkpoints" / str(j["id"]) / "log.txt").read_text()
        assert log.count("training process started") == 1, j["id"]
    workers = {j["worker"].split(":")[0] for j in done}
    assert workers <= {"test-worker-1@localhost", "test-worker-2@localhost"}


def test_a_killed_rank_fails_the_job_and_leaves_no_process(service, cifar):
    r = service.post("/jobs", json={"preset": "cifar10-lenet",
                                    "overrides": CIFAR | {"world_size": 2, "epochs": 200, "train_limit": 10000}})
    job_id = r.json()["id"]
    job_dir = service.var / "checkpoints" / str(job_id)
    deadline = time.monotonic() + 120
    while not ((service.get(f"/jobs/{job_id}").json()["progress"] or {}).get("step")
               and (job_dir / "rank1.pid").exists()):
        assert time.monotonic() < deadline, service.get(f"/jobs/{job_id}").json()
        time.sleep(0.2)
    pids = [int((job_dir / f"rank{r}.pid").read_text()) for r in (0, 1)]
    os.kill(pids[1], signal.SIGKILL)

    job = service.wait(job_id, timeout=120)
    assert job["status"] == "failed", job
    assert "exitcode: -9" in job["error"] and "local_rank: 1" in job["error"], job["error"]  # names the dead rank
    for pid in pids:
        assert not _alive(pid), f"rank process {pid} left behind"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is dead, merely not yet reaped
        return f.read().split()[2] != "Z"
