"""End to end: HTTP API -> PostgreSQL -> Redis -> a real Celery worker -> a training child -> results."""

from __future__ import annotations

import hashlib
import time

import numpy as np
import torch
from PIL import Image

SMALL = {"train_limit": 2000, "test_limit": 1000, "lr": 0.05, "momentum": 0.9}  # learns fast enough to check


def test_job_runs_to_success_with_metrics_checkpoints_and_result(service):
    r = service.post("/jobs", json={"preset": "mnist-cnn", "overrides": SMALL, "name": "e2e"})
    assert r.status_code == 201, r.text
    job = service.wait(r.json()["id"])
    assert job["status"] == "succeeded", job
    assert job["attempts"] == 1 and job["worker"].startswith("test-worker-1@localhost")
    assert job["progress"]["fraction"] == 1.0
    result = job["result"]
    assert 0.4 < result["test_accuracy"] <= 1.0  # well above chance (0.1) after 32 steps
    assert result["params"] == 6422 and result["epochs"] == 1
    assert result["data"]["name"] == "mnist" and result["data"]["fingerprint"].startswith("sha256:")
    assert result["environment"]["torch"] == torch.__version__ and "cpu" in result["environment"]["device"]

    metrics = service.get(f"/jobs/{job['id']}/metrics").json()
    assert [m["epoch"] for m in metrics["epochs"]] == [1]
    assert metrics["epochs"][0]["test_accuracy"] == result["test_accuracy"]
    # 2,000/64 = 32 steps: by default about 100 points a run, so every step (samples seen: 64 a step, 16 the last)
    assert [s["step"] for s in metrics["steps"]] == list(range(1, 33))
    assert [s["samples_seen"] for s in metrics["steps"]][-2:] == [1984, 2000]
    assert [(p["samples_seen"], p["full"], p["test_samples"]) for p in metrics["evals"]][-1] == (2000, True, 1000)
    assert metrics["evals"][-1]["test_accuracy"] == result["test_accuracy"]

    ckpts = service.get(f"/jobs/{job['id']}/checkpoints").json()["items"]
    assert [c["epoch"] for c in ckpts] == [1]
    blob = service.get(ckpts[0]["url"])
    assert blob.status_code == 200
    assert hashlib.sha256(blob.content).hexdigest() == ckpts[0]["sha256"] == blob.headers["X-Checkpoint-SHA256"]
    assert service.get(f"/jobs/{job['id']}/checkpoints/7").status_code == 404


def test_cancel_queued_and_running_jobs(service):
    long = service.post("/jobs", json={"preset": "mnist-cnn", "overrides": {"epochs": 50}}).json()
    service.wait(long["id"], statuses=("running",))
    waiting = service.post("/jobs", json={"preset": "mnist-fc", "overrides": SMALL}).json()
    assert service.post(f"/jobs/{waiting['id']}/cancel").json()["status"] == "cancelled"

    deadline = time.monotonic() + 60
    while not (service.get(f"/jobs/{long['id']}").json()["progress"] or {}).get("step"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    asked = time.monotonic()
    assert service.post(f"/jobs/{long['id']}/cancel").status_code == 202
    stopped = service.wait(long["id"], timeout=60)
    assert stopped["status"] == "cancelled" and stopped["error"] is None
    assert time.monotonic() - asked < 30  # a step boundary, not the end of 50 epochs
    assert len(service.get(f"/jobs/{long['id']}/metrics").json()["epochs"]) < 50

    # The worker then meets the cancelled job's message and must not start it.
    marker = service.post("/jobs", json={"preset": "mnist-fc", "overrides": SMALL}).json()
    assert service.wait(marker["id"])["status"] == "succeeded"
    never = service.get(f"/jobs/{waiting['id']}").json()
    assert never["status"] == "cancelled" and never["started_at"] is None and never["attempts"] == 0


def test_a_failing_job_ends_failed_with_its_error(service, tmp_path):
    # A dataset whose first image looks fine at submission but whose images differ in size.
    root = service.data_dir / "uneven"
    for split in ("train", "test"):
        for i, size in enumerate((16, 18)):
            (root / split / "a").mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.zeros((size, size), dtype=np.uint8)).save(root / split / "a" / f"{i}.png")
    deadline = time.monotonic() + 60  # the worker reports its datasets each dispatch round: the folder is new
    while (r := service.post("/jobs", json={"spec": {"model": "fc2", "dataset": "uneven"}})).status_code == 422:
        assert "next report" in r.text and time.monotonic() < deadline, r.text
        time.sleep(0.5)
    assert r.status_code == 201, r.text
    job = service.wait(r.json()["id"])
    assert job["status"] == "failed"
    assert "DataError" in job["error"] and "share one size" in job["error"]
    assert job["result"] is None


def test_bad_requests_over_http(service):
    assert service.post("/jobs", data="nope", headers={"Content-Type": "application/json"}).status_code == 400
    r = service.post("/jobs", json={"preset": "mnist-cnn", "overrides": {"batch_size": -1}})
    assert r.status_code == 422 and "batch_size" in r.json()["error"]["message"]
    assert service.post("/jobs", data=b"x" * 200_000, headers={"Content-Type": "application/json"}).status_code == 413
    assert service.get("/jobs/123456789").status_code == 404
    assert service.get("/healthz").json() == {"status": "ok", "database": "ok", "broker": "ok"}


def test_cuda_ranks_past_a_workers_gpus_fail_the_job_naming_both_numbers(monkeypatch):
    from shared.train.launch import gpu_shortfall
    from worker.supervisor import visible_gpus

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    assert visible_gpus() == ["3"]
    assert gpu_shortfall("cuda", 2, len(visible_gpus()), "worker w") == \
        "world_size 2 needs 2 GPUs (one per rank); worker w has 1"
    assert gpu_shortfall("auto", 2, 1, "worker w") is not None  # auto on a GPU worker runs CUDA ranks
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert visible_gpus() == [] and gpu_shortfall("auto", 2, 0, "worker w") is None  # CPU ranks (gloo)
    assert gpu_shortfall("cuda", 1, 0, "worker w") is None and gpu_shortfall("cuda", 2, 2, "worker w") is None
