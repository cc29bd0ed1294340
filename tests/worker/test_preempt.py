"""Priorities that act: on a one-worker queue a priority-9 job waiting behind a running priority-0 job makes it
yield at its next checkpoint; the yielded job resumes afterwards and finishes, its attempt not counted. Why the
urgent job waits is on GET /jobs/<id>, on /queue and in the CLI's bar; both jobs' machine use is sampled, stored
and summarized in their results."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import redis
from support import REPO, LiveAPI, WorkerProcess, drop_postgres_database, private_backends, service_env

from worker.jobfiles import START_MARK

EPOCHS = 12
# Epochs of ~2 s on a quiet machine (longer than the 2 s heartbeat), so the urgent job is seen waiting behind the low
# one for a few heartbeats before it yields at the next checkpoint, and the low job cannot reach its last epoch
# (where it no longer yields) before then: 24 epochs of 3,000 images (~0.25 s each) ended first, or yielded within
# one poll of /queue, on a quiet machine.
LOW = {"epochs": EPOCHS, "train_limit": 30000, "test_limit": 200, "keep_checkpoints": EPOCHS, "eval_every": 0}


@pytest.fixture
def solo(data_root, cache_root, tmp_path):
    """One worker (concurrency 1) of its own, sampling every second, with a short lease and dispatch round."""
    url, broker = private_backends()
    env = service_env(url, broker, tmp_path, data_root, cache_root, CNNLAB_DISPATCH_SECONDS="2",
                      CNNLAB_LEASE_SECONDS="15", CNNLAB_SYSTEM_SAMPLE_SECONDS="1")
    api = LiveAPI(url, broker, data_root)
    worker = WorkerProcess(env, tmp_path / "worker.log", "solo@localhost")
    yield api, worker, tmp_path
    worker.stop()
    api.close()
    drop_postgres_database(url)
    redis.Redis.from_url(broker).flushdb()


def wait_for(what, check, timeout: float = 180):
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, what()
        time.sleep(0.2)
    return found


def test_an_urgent_job_preempts_a_running_one_at_its_checkpoint_and_the_yielded_job_resumes(solo):
    api, worker, var = solo
    low = api.post("/jobs", json={"preset": "mnist-cnn", "overrides": LOW}).json()["id"]
    wait_for(lambda: api.get(f"/jobs/{low}").json(), lambda: api.get(f"/jobs/{low}/checkpoints").json()["items"])
    bar = open(var / "cli.err", "w+")
    cli = subprocess.Popen([sys.executable, "-m", "shared.cli", "submit", "mnist-cnn", "--set", "epochs=1",
                            "--set", "train_limit=1000", "--set", "test_limit=200", "--priority", "9", "--wait",
                            "--server", api.url, "--token", api.token], cwd=REPO, stdout=subprocess.PIPE,
                           stderr=bar, text=True)
    high = wait_for(lambda: bar.read(), lambda: _job_id(var / "cli.err"), timeout=60)
    reasons, queue_reasons = set(), set()
    while (job := api.get(f"/jobs/{high}").json())["status"] == "queued":
        reasons.add(job["waiting"])
        queue_reasons |= {w["reason"] for w in api.get("/queue?format=json").json()["waiting"] if w["id"] == high}
        time.sleep(0.3)
    behind = f"behind job {low} (priority 0), which yields at its next checkpoint"
    assert any(behind in (r or "") for r in reasons), reasons
    assert any(behind in (r or "") for r in queue_reasons), queue_reasons
    assert cli.wait(timeout=240) == 0, (var / "cli.err").read_text()
    assert behind in (var / "cli.err").read_text()  # the bar said why it waited

    done = api.wait(low, timeout=300)
    urgent = api.get(f"/jobs/{high}").json()
    assert done["status"] == "succeeded" and done["attempts"] == 1, done  # the yielded attempt is not counted
    assert urgent["status"] == "succeeded" and urgent["finished_at"] < done["finished_at"], (urgent, done)
    log = worker.log.read_text()
    assert f"job {high} (priority 9) waits; queued again" in log and "Traceback" not in log, log
    assert [m["epoch"] for m in api.get(f"/jobs/{low}/metrics").json()["epochs"]] == list(range(1, EPOCHS + 1))
    assert (var / "checkpoints" / str(low) / "log.txt").read_text().count(START_MARK) == 2  # resumed, once

    for job_id in (low, high):  # sampled every second while training, summarized into the result
        system = api.get(f"/jobs/{job_id}/system").json()
        assert system["samples"] and all(s["rss_mb"] > 0 for s in system["samples"]), system
        summary = system["summary"]
        assert summary["samples"] == len(system["samples"]) and summary["cpu_percent_peak"] > 0, summary
        assert summary["rss_mb_peak"] >= summary["rss_mb_mean"] > 0 and len(summary["load_average"]) == 3, summary
        assert summary["gpu_percent_mean"] is None  # a CPU worker: no GPU figures


def _job_id(err_path) -> int | None:
    """The job id the CLI announced on stderr ('job 12: http://...')."""
    text = err_path.read_text()
    if ": http" not in text:
        return None
    return int(text.split("job ", 1)[1].split(":", 1)[0])
