"""End to end through a real worker: test points while a job trains and after, its log (text, follow, server-sent
events), and its progress (phase, step x/y, elapsed time, ETA)."""

from __future__ import annotations

import threading
import time

# 3,000 images in batches of 32, 2 epochs: 188 steps, long enough on 2 busy cores to be seen running.
SLOW = {"train_limit": 3000, "test_limit": 500, "epochs": 2, "batch_size": 32, "eval_every": 1000,
        "eval_samples": 200, "lr": 0.05, "momentum": 0.9, "device": "cpu"}


def read_stream(service, path: str, headers: dict, out: dict) -> None:
    """GET `path` streamed to its end: the text and how long it stayed open."""
    t0 = time.monotonic()
    with service.get(path, headers=headers, stream=True) as r:
        out["status"], out["type"] = r.status_code, r.headers.get("Content-Type", "")
        out["text"] = b"".join(r.iter_content(chunk_size=None)).decode()
    out["seconds"] = time.monotonic() - t0


def sse_events(text: str) -> list[dict]:
    events = []
    for block in text.split("\n\n"):
        fields = [line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":")]
        if fields:
            events.append({k: v for k, v in fields if k in ("event", "data", "id")})
    return events


def watch_running(service, job_id: int) -> list[tuple[dict, dict]]:
    """(job, metrics) pairs seen while the job was running, until it ends."""
    seen = []
    while True:
        job = service.get(f"/jobs/{job_id}").json()
        if job["status"] not in ("queued", "running"):
            return seen
        metrics = service.get(f"/jobs/{job_id}/metrics").json()
        if job["status"] == "running" and service.get(f"/jobs/{job_id}").json()["status"] == "running":
            seen.append((job, metrics))
        time.sleep(0.2)


def test_points_log_and_progress_while_a_job_trains_and_after(service):
    job_id = service.post("/jobs", json={"preset": "mnist-cnn", "overrides": SLOW, "name": "curves"}).json()["id"]
    follow, sse = {}, {}
    readers = [threading.Thread(target=read_stream, args=(service, f"/jobs/{job_id}/log?follow=true", {}, follow)),
               threading.Thread(target=read_stream, args=(service, f"/jobs/{job_id}/log",
                                                         {"Accept": "text/event-stream"}, sse))]
    for t in readers:
        t.start()
    running = watch_running(service, job_id)
    for t in readers:
        t.join(timeout=60)
    job = service.get(f"/jobs/{job_id}").json()
    assert job["status"] == "succeeded", job

    # Points by samples seen: every 1,000 samples on the 200-image subset, the whole 500 at each epoch's end.
    final = service.get(f"/jobs/{job_id}/metrics").json()
    points = [(p["samples_seen"], p["full"], p["test_samples"]) for p in final["evals"]]
    assert [(s, n) for s, full, n in points if full] == [(3000, 500), (6000, 500)]
    # after the step (of 32) that reaches 1,000 and 2,000 samples of each epoch
    assert [(s, n) for s, full, n in points if not full] == [(1024, 200), (2016, 200), (4024, 200), (5016, 200)]
    assert all(0 < p["epoch"] <= 2 and 0 <= p["test_accuracy"] <= 1 for p in final["evals"])
    assert final["evals"][-1]["test_accuracy"] == job["result"]["test_accuracy"]
    # every round(188 / 100) = 2 steps, and at each epoch's end (94 steps): 47 an epoch
    assert len(final["steps"]) == 2 * 47 and final["steps"][-1]["samples_seen"] == 6000
    # ... some of them already there while it was still running, and more later
    during = [len(m["evals"]) for _, m in running]
    assert any(0 < n < len(points) for n in during), during

    # Progress while running: a phase, step x/y of the run, elapsed time, an ETA, never 100%.
    progress = [j["progress"] for j, _ in running if j["progress"]]
    assert progress and {p["phase"] for p in progress} <= {"loading", "training", "evaluating", "saving"}
    steps = [p for p in progress if p.get("global_step")]
    assert steps and all(p["total_steps"] == 188 and p["global_step"] <= 188 for p in steps)
    assert all(p["fraction"] < 1 and p["elapsed_seconds"] >= 0 for p in steps)
    assert any(p["eta_seconds"] is not None for p in steps)
    assert job["progress"]["phase"] == "done" and job["progress"]["fraction"] == 1.0
    assert job["progress"]["eta_seconds"] is None

    # The log: the whole text, the same as followed live, and as events one line each, then the end.
    log = service.get(f"/jobs/{job_id}/log")
    assert log.status_code == 200 and log.headers["Content-Type"].startswith("text/plain")
    text = log.text
    for expected in ("loading mnist", "evaluating every 1,000 samples on the first 200 test images",
                     "epoch 1/2: train loss", "epoch 2/2: train loss", "checkpoint epoch-002.pt",
                     "done: test accuracy"):
        assert expected in text, (expected, text)
    assert follow["status"] == 200 and follow["text"] == text
    assert sse["status"] == 200 and sse["type"].startswith("text/event-stream")
    events = sse_events(sse["text"])
    assert [e["data"] for e in events if "event" not in e and "data" in e] == text.splitlines()
    assert events[-1] == {"event": "end", "data": '{"status": "succeeded"}'}
    ids = [int(e["id"]) for e in events if "id" in e]
    assert ids == sorted(ids) and ids[-1] == len(text.encode())

    # An EventSource reconnecting after the end is told to stop; a finished job's follow ends at once.
    assert service.get(f"/jobs/{job_id}/log", headers={"Accept": "text/event-stream",
                                                       "Last-Event-ID": str(ids[-1])}).status_code == 204
    assert service.get(f"/jobs/{job_id}/log?follow=true").text == text

    worker_log = (service.var / "worker.log").read_text()
    assert f"job {job_id} started (attempt 1" in worker_log and f"job {job_id} succeeded (attempt 1" in worker_log


def test_log_of_an_unknown_job_or_with_a_bad_query(service):
    assert service.get("/jobs/999999/log").status_code == 404
    job_id = service.post("/jobs", json={"preset": "mnist-fc", "overrides": {"train_limit": 500, "test_limit": 100}})\
        .json()["id"]
    for query in ("follow=maybe", "tail=5"):
        r = service.get(f"/jobs/{job_id}/log?{query}")
        assert r.status_code == 422 and r.json()["error"]["message"].startswith("invalid request"), r.text
    assert service.wait(job_id)["status"] == "succeeded"
