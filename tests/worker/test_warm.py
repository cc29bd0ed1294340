"""Warm trainers through the service: reused after a clean job, replaced after anything else, isolated per job."""

from __future__ import annotations

import contextlib
import os
import signal
import time

import numpy as np
import pytest
from PIL import Image
from support import WorkerProcess, private_lab

from worker.jobfiles import START_MARK
from worker.processes import alive

SMALL = {"train_limit": 2000, "test_limit": 500}
LONG = {"epochs": 50}  # mnist-cnn: minutes on 2 cores, ended by the test
GRACE = 3  # seconds a cancelled run may take to stop before it is killed (production: 120)


@pytest.fixture(scope="module")
def lab(data_root, cache_root, tmp_path_factory):
    """A database, a Redis database and a var dir of its own; each test starts the worker it needs."""
    with private_lab("warm", data_root, cache_root, tmp_path_factory, CNNLAB_STOP_GRACE_SECONDS=str(GRACE)) as api:
        yield api


@contextlib.contextmanager
def worker(lab, per_gpu: int = 1, **env):
    w = WorkerProcess(lab.env | env, lab.var / "worker.log", "warm-worker@localhost", args=("--per-gpu", str(per_gpu)))
    try:
        yield w
    finally:
        w.stop()


def post(lab, preset: str = "mnist-fc", **overrides) -> int:
    r = lab.post("/jobs", json={"preset": preset, "overrides": SMALL | overrides})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def job_file(lab, job_id: int, name: str):
    return lab.var / "checkpoints" / str(job_id) / name


def trainer_pid(lab, job_id: int) -> int:
    """The process that trained (or trains) the job: it writes rank0.pid when the job starts."""
    return int(job_file(lab, job_id, "rank0.pid").read_text())


def wait_training(lab, *job_ids: int) -> None:
    """Until every job has taken a training step."""
    deadline = time.monotonic() + 120
    for job_id in job_ids:
        while not ((lab.get(f"/jobs/{job_id}").json()["progress"] or {}).get("step")
                   and job_file(lab, job_id, "rank0.pid").exists()):
            assert time.monotonic() < deadline, lab.get(f"/jobs/{job_id}").json()
            time.sleep(0.2)


def test_one_trainer_trains_job_after_job_as_if_fresh(lab):
    with worker(lab):
        ids = [post(lab, seed=3), post(lab, seed=3), post(lab, seed=4)]
        done = [lab.wait(i) for i in ids]
    assert [j["status"] for j in done] == ["succeeded"] * 3, done
    assert len({trainer_pid(lab, i) for i in ids}) == 1  # one warm process trained all three
    # Nothing of the first job leaks into the second: the same spec gives the very same numbers.
    first, second = (j["result"] for j in done[:2])
    assert (first["test_accuracy"], first["test_loss"]) == (second["test_accuracy"], second["test_loss"])
    losses = [[m["train_loss"] for m in lab.get(f"/jobs/{i}/metrics").json()["epochs"]] for i in ids]
    assert losses[0] == losses[1] != losses[2]
    for i in ids:  # each job's log is its own attempt only, not the trainer's start-up output
        log = job_file(lab, i, "log.txt").read_text()
        assert log.count(START_MARK) == 1 and "warm in" not in log, log


def test_a_failed_or_cancelled_job_s_trainer_is_replaced(lab):
    root = lab.data_dir / "uneven"  # a dataset whose images differ in size: fails once training loads it
    for split in ("train", "test"):
        for i, size in enumerate((16, 18)):
            (root / split / "a").mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.zeros((size, size), dtype=np.uint8)).save(root / split / "a" / f"{i}.png")
    with worker(lab):
        bad = lab.post("/jobs", json={"spec": {"model": "fc2", "dataset": "uneven"}}).json()["id"]
        failed = lab.wait(bad)
        after_failure = post(lab)
        assert lab.wait(after_failure)["status"] == "succeeded"

        long = post(lab, "mnist-cnn", **LONG)
        wait_training(lab, long)
        assert lab.post(f"/jobs/{long}/cancel").status_code == 202
        assert lab.wait(long)["status"] == "cancelled"
        after_cancel = post(lab)
        assert lab.wait(after_cancel)["status"] == "succeeded"
    assert failed["status"] == "failed" and "DataError" in failed["error"], failed
    log = job_file(lab, bad, "log.txt").read_text()
    assert "Traceback" in log and "share one size" in log  # the trainer's output landed in the job's log
    assert "Traceback" not in job_file(lab, after_failure, "log.txt").read_text()
    assert trainer_pid(lab, after_failure) != trainer_pid(lab, bad)
    assert trainer_pid(lab, after_cancel) != trainer_pid(lab, long)
    assert not alive(trainer_pid(lab, bad)) and not alive(trainer_pid(lab, long))


def test_a_trainer_above_the_memory_bound_is_replaced(lab):
    with worker(lab, CNNLAB_TRAINER_MAX_RSS_MB="1"):  # any trainer is above 1 MiB after a job
        ids = [post(lab), post(lab)]
        done = [lab.wait(i) for i in ids]
    assert [j["status"] for j in done] == ["succeeded"] * 2
    assert trainer_pid(lab, ids[0]) != trainer_pid(lab, ids[1])


def test_two_jobs_run_at_once_on_one_worker(lab):
    with worker(lab, per_gpu=2):
        ids = [post(lab, "mnist-cnn", train_limit=20000, epochs=2) for _ in range(2)]
        done = [lab.wait(i, timeout=300) for i in ids]
    assert [j["status"] for j in done] == ["succeeded"] * 2, done
    assert max(j["started_at"] for j in done) < min(j["finished_at"] for j in done)  # they overlapped
    assert trainer_pid(lab, ids[0]) != trainer_pid(lab, ids[1])  # one trainer per slot
    hosts, pool_pids = zip(*(j["worker"].split(":") for j in done), strict=True)
    assert set(hosts) == {"warm-worker@localhost"} and len(set(pool_pids)) == 2  # one worker, two slots
    # The two trainers share the machine's cores rather than each taking all of them.
    assert {j["result"]["environment"]["threads"] for j in done} == {max(1, os.cpu_count() // 2)}


@pytest.mark.parametrize("sig", [signal.SIGSEGV, signal.SIGKILL], ids=["segfault", "killed"])
def test_a_crashed_trainer_fails_only_its_job(lab, sig):
    """A segfault is the job's own crash: it fails. SIGKILL comes from outside (the OOM killer): the job is tried
    again (ended here by a cancel once its second attempt runs). Either way the other slot's job goes on."""
    with worker(lab, per_gpu=2):
        other = post(lab, "mnist-cnn", train_limit=20000, epochs=3)
        victim = post(lab, "mnist-cnn", **LONG)
        wait_training(lab, other, victim)
        other_pid, victim_pid = trainer_pid(lab, other), trainer_pid(lab, victim)
        os.kill(victim_pid, sig)
        if sig == signal.SIGKILL:
            lab.wait(victim, statuses=("running",), attempts=2)
            assert lab.post(f"/jobs/{victim}/cancel").status_code == 202
        crashed = lab.wait(victim)
        survivor = lab.wait(other, timeout=300)
        after = post(lab)
        assert lab.wait(after)["status"] == "succeeded"
    if sig == signal.SIGKILL:
        assert crashed["status"] == "cancelled" and crashed["attempts"] == 2, crashed
    else:
        assert crashed["status"] == "failed" and f"code {-sig}" in crashed["error"], crashed
    if sig == signal.SIGSEGV:  # faulthandler wrote the crash into the job's own log
        assert "Segmentation fault" in job_file(lab, victim, "log.txt").read_text()
        assert "Segmentation fault" not in job_file(lab, other, "log.txt").read_text()
    assert survivor["status"] == "succeeded" and survivor["attempts"] == 1, survivor
    assert trainer_pid(lab, other) == other_pid and trainer_pid(lab, after) != victim_pid
    assert not alive(victim_pid)


def test_a_hung_trainer_is_killed_after_the_grace_and_others_go_on(lab):
    with worker(lab, per_gpu=2):
        other = post(lab, "mnist-cnn", train_limit=20000, epochs=3)
        hung = post(lab, "mnist-cnn", **LONG)
        wait_training(lab, other, hung)
        hung_pid = trainer_pid(lab, hung)
        os.kill(hung_pid, signal.SIGSTOP)  # frozen: never reaches the step boundary where it would stop
        assert lab.post(f"/jobs/{hung}/cancel").status_code == 202
        stopped = lab.wait(hung, timeout=60)
        survivor = lab.wait(other, timeout=300)
    assert stopped["status"] == "cancelled" and stopped["error"] is None, stopped
    assert not alive(hung_pid)
    assert survivor["status"] == "succeeded", survivor
