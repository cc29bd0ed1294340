"""Which running job yields to which waiting one (shared.store.fleet.preemptions), and the time to its checkpoint."""

from __future__ import annotations

import uuid
from datetime import timedelta

from shared.store.db import session_scope
from shared.store.fleet import WorkerInfo, next_checkpoint_seconds, preemptions, preemptor, why_waiting
from shared.store.models import Job, utcnow


def add(s, queue: str, priority: int, age: int, status: str = "queued", progress: dict | None = None) -> Job:
    now = utcnow()
    job = Job(name=uuid.uuid4().hex, model="cnn", dataset="mnist", spec={}, status=status, queue=queue,
              priority=priority, created_at=now - timedelta(seconds=age), progress=progress,
              started_at=now - timedelta(seconds=age) if status == "running" else None)
    s.add(job)
    s.flush()
    return job


def test_each_urgent_job_takes_the_slot_of_the_lowest_running_one(db_url):
    with session_scope(db_url) as s:  # a queue of this test's own
        low, mid, urgent_run = add(s, "q-pre", 0, 60, "running"), add(s, "q-pre", 5, 50, "running"), \
            add(s, "q-pre", 9, 40, "running")
        nine, eight = add(s, "q-pre", 9, 10), add(s, "q-pre", 8, 5)
        add(s, "q-pre", 7, 20)  # waits longest, but below CNNLAB_PREEMPT_PRIORITY
        pairs = [(r.id, w.id) for r, w in preemptions(s, "q-pre")]
        assert pairs == [(low.id, nine.id), (mid.id, eight.id)]  # priority 7 is below the threshold; 9 never yields
        assert preemptor(s, low.id, grace=0).id == nine.id and preemptor(s, urgent_run.id, grace=0) is None
        assert preemptions(s, "q-pre", grace=30) == []  # just submitted: a free worker may yet take them
        s.rollback()


def test_an_equal_priority_never_preempts(db_url, monkeypatch):
    monkeypatch.setenv("CNNLAB_PREEMPT_PRIORITY", "8")
    with session_scope(db_url) as s:
        add(s, "q-eq", 9, 60, "running")
        add(s, "q-eq", 9, 10)
        assert preemptions(s, "q-eq") == []
        s.rollback()


def test_the_waiting_reason_names_the_job_that_yields_and_when(db_url):
    progress = {"step": 30, "steps": 100, "global_step": 130, "total_steps": 400, "eta_seconds": 270.0,
                "reported_at": utcnow().isoformat()}  # 1 s a step: 70 steps to the epoch's end
    with session_scope(db_url) as s:
        low = add(s, "q-wait", 0, 60, "running", progress)
        urgent = add(s, "q-wait", 9, 10)
        assert round(next_checkpoint_seconds(low)) == 70
        busy = [WorkerInfo("w1@h", ["q-wait"], [low.id])]
        assert why_waiting(s, urgent, busy).endswith(
            f"every worker of the q-wait queue is busy; behind job {low.id} (priority 0), which yields at its next "
            "checkpoint in ~70 s")
        calm = add(s, "q-wait", 3, 5)
        assert why_waiting(s, calm, busy).endswith(f"behind job {low.id} (priority 0), ~4 min left")
        s.rollback()
