"""Queue order, positions and 'why it waits' (shared.store.fleet) on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from shared.store.db import session_scope
from shared.store.fleet import WorkerInfo, depths, position, queue_warnings, served, waiting, why_waiting
from shared.store.models import Job, utcnow


def add(s, queue: str, priority: int, age: int, status: str = "queued") -> Job:
    job = Job(name=uuid.uuid4().hex, model="cnn", dataset="mnist", spec={}, status=status, queue=queue,
              priority=priority, created_at=utcnow() - timedelta(seconds=age))
    s.add(job)
    s.flush()
    return job


def test_positions_follow_priority_then_age_within_a_queue(db_url):
    with session_scope(db_url) as s:  # a queue of this test's own: nothing else waits in it
        old_low, new_high, new_low = add(s, "q-test", 0, 30), add(s, "q-test", 9, 10), add(s, "q-test", 0, 5)
        other, running = add(s, "cpu", 9, 100), add(s, "q-test", 9, 100, "running")
        assert [position(s, j) for j in (new_high, old_low, new_low)] == [1, 2, 3]
        ids = {old_low.id, new_high.id, new_low.id, other.id, running.id}
        mine = [j.id for j in waiting(s, limit=10_000) if j.id in ids and j.queue == "q-test"]
        assert mine == [new_high.id, old_low.id, new_low.id]  # the running one is not waiting
        assert depths(s)["q-test"] == 3 and "gpu" in depths(s)
        s.rollback()


def test_why_a_job_waits(db_url):
    with session_scope(db_url) as s:
        first, second = add(s, "q-why", 0, 10), add(s, "q-why", 0, 0)
        assert why_waiting(s, first, []) == "no live worker serves the q-why queue; position 1 in the q-why queue " \
                                             "(next to run)"
        idle, busy = [WorkerInfo("w1@h", ["q-why"], [])], [WorkerInfo("w1@h", ["q-why"], [41])]
        assert why_waiting(s, second, idle) == "position 2 in the q-why queue (1 job ahead)"
        assert why_waiting(s, second, busy) == "position 2 in the q-why queue (1 job ahead); every worker of the " \
                                               "q-why queue is busy"
        assert why_waiting(s, second, None) == "position 2 in the q-why queue (1 job ahead) (the workers could not " \
                                               "be asked)"
        first.status = "running"
        assert why_waiting(s, first, idle) is None
        s.rollback()


def test_served_and_the_submit_warning():
    workers = [WorkerInfo("a@h", ["cpu"], [])]
    assert (served(workers, "cpu"), served(workers, "gpu"), served(None, "gpu")) == (True, False, None)
    unreachable = queue_warnings("redis://127.0.0.1:1/0", "gpu")
    assert [w.field for w in unreachable] == ["device"] and "could not ask" in unreachable[0].message


def test_a_job_needing_more_gpus_than_any_live_worker_has_says_so_and_what_holds_it_back(db_url):
    with session_scope(db_url) as s:
        job = add(s, "q-gpus", 0, 0)
        job.spec = {"device": "cuda", "world_size": 4}
        one, none_yet = [{"name": "g", "queues": ["q-gpus"], "gpus": 2}], []
        idle = [WorkerInfo("g", ["q-gpus"], [])]
        assert why_waiting(s, job, idle, beats=one) == "no live worker of the q-gpus queue has the 4 GPUs " \
                                                       "world_size 4 needs (the most any has: 2); position 1 in the " \
                                                       "q-gpus queue (next to run)"
        assert why_waiting(s, job, [], beats=none_yet).startswith("no live worker of the q-gpus queue has the 4 GPUs "
                                                                  "world_size 4 needs (none is live); no live worker "
                                                                  "serves the q-gpus queue")
        four = [{"name": "g", "queues": ["q-gpus"], "gpus": 4}]
        assert why_waiting(s, job, idle, beats=four) == "position 1 in the q-gpus queue (next to run)"
        unknown = [{"name": "g", "queues": ["q-gpus"]}]  # an older worker that does not report its GPUs
        assert why_waiting(s, job, idle, beats=unknown) == "position 1 in the q-gpus queue (next to run)"
        job.spec = {"device": "auto", "world_size": 4}  # CPU ranks (gloo) where there is no GPU: nothing missing
        assert why_waiting(s, job, idle, beats=none_yet) == "position 1 in the q-gpus queue (next to run)"
        held = "worker w@h holds it back: needs 2.000 GB for 1 member(s) + 0.5 GB margin; 1.200 GB room (...)"
        assert why_waiting(s, job, idle, held_back=held) == f"position 1 in the q-gpus queue (next to run); {held}"
        s.rollback()


def test_the_gpu_check_at_submit_counts_only_live_workers_of_the_queue_that_report(monkeypatch):
    from shared.lab.specs import SpecError, resolve
    from shared.store import fleet

    spec = resolve("mnist-cnn", {"device": "cuda", "world_size": 3})
    beats = [{"name": "a", "queues": ["gpu"], "gpus": 2}, {"name": "b", "queues": ["cpu"], "gpus": 8}]
    monkeypatch.setattr(fleet, "reports", lambda url: beats)
    with pytest.raises(SpecError) as refused:
        fleet.check_gpus("redis://x", "gpu", spec)
    assert refused.value.errors[0]["field"] == "world_size"
    assert "world_size 3 needs 3 GPUs (one per rank); the live worker of the gpu queue with the most has 2" in \
        refused.value.errors[0]["message"]
    fleet.check_gpus("redis://x", "gpu", resolve("mnist-cnn", {"device": "cuda", "world_size": 2}))
    beats.append({"name": "c", "queues": ["gpu"]})  # one that does not say: it may have enough
    fleet.check_gpus("redis://x", "gpu", spec)
    monkeypatch.setattr(fleet, "reports", lambda url: [])
    fleet.check_gpus("redis://x", "gpu", spec)  # no live worker: accepted, it waits for one


def test_auto_ranks_are_accepted_where_a_worker_without_gpus_runs_them_as_cpu_ranks(monkeypatch, db_url):
    """A `device: auto` job of 2 ranks on the cpu queue: a 1-GPU worker would need 2 GPUs, but a CPU worker of the
    same queue runs it with gloo, so neither the submit nor the waiting reason refuses it (review finding)."""
    from shared.lab.specs import SpecError, resolve
    from shared.store import fleet

    spec = resolve("mnist-cnn", {"world_size": 2})  # device auto
    beats = [{"name": "g", "queues": ["gpu", "cpu"], "gpus": 1}, {"name": "c", "queues": ["cpu"], "gpus": 0}]
    monkeypatch.setattr(fleet, "reports", lambda url: beats)
    fleet.check_gpus("redis://x", "cpu", spec)
    with session_scope(db_url) as s:
        job = add(s, "cpu", 0, 0)
        job.spec = {**job.spec, "device": "auto", "world_size": 2}
        assert fleet.gpus_missing(job, beats) is None
        assert fleet.gpus_missing(job, beats[:1]).startswith("no live worker of the cpu queue has the 2 GPUs")
    beats.pop()  # the 1-GPU worker alone would start 2 CUDA ranks: refused
    with pytest.raises(SpecError):
        fleet.check_gpus("redis://x", "cpu", spec)
