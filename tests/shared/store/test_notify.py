"""Notifications in the store: due once ended, claimed by one sender at a time, backed off, given up."""

from __future__ import annotations

from sqlalchemy import update

from shared.store import notify
from shared.store.db import session_scope
from shared.store.jobs import create_job
from shared.store.models import Job, Notification, utcnow


def _job(db_url, data_root) -> int:
    with session_scope(db_url) as s:
        job, _ = create_job(s, preset="mnist-fc", data_root=data_root, notify={"url": "http://127.0.0.1:9/hook"})
        s.flush()
        return job.id


def test_a_notification_is_due_once_its_job_ends_and_is_claimed_once(db_url, data_root, monkeypatch):
    monkeypatch.setenv("CNNLAB_NOTIFY_HOSTS", '["127.0.0.1"]')
    job_id = _job(db_url, data_root)
    with session_scope(db_url) as s:
        assert notify.mark_ended(s) == 0 and notify.claim_due(s) == []  # queued: not ended yet
        s.execute(update(Job).where(Job.id == job_id).values(status="failed", error="boom", finished_at=utcnow()))
        s.commit()
        assert notify.mark_ended(s) == 1 and notify.mark_ended(s) == 0
        [d] = notify.claim_due(s)
        assert notify.claim_due(s) == []  # held by the first sender: a second one in the same round gets nothing
    assert (d.url, d.attempt, d.payload["event"]) == ("http://127.0.0.1:9/hook", 1, "job.ended")
    assert d.payload["job"]["status"] == "failed" and d.payload["job"]["error"] == "boom"


def test_failures_back_off_then_give_up(db_url, data_root, monkeypatch):
    monkeypatch.setenv("CNNLAB_NOTIFY_HOSTS", '["127.0.0.1"]')
    monkeypatch.setenv("CNNLAB_NOTIFY_ATTEMPTS", "3")
    monkeypatch.setenv("CNNLAB_NOTIFY_RETRY_SECONDS", "10")
    job_id = _job(db_url, data_root)
    with session_scope(db_url) as s:
        s.execute(update(Job).where(Job.id == job_id).values(status="succeeded", finished_at=utcnow()))
        s.commit()
        notify.mark_ended(s)
        [d] = notify.claim_due(s)
        assert notify.record(s, d.id, code=500, error=None) == "pending"
        row = s.get(Notification, d.id)
        waited = (row.next_at - utcnow()).total_seconds()
        assert 9 < waited <= 10 and row.last_error == "HTTP 500" and notify.claim_due(s) == []  # not due yet
        assert notify.record(s, d.id, code=None, error="ConnectionError: refused") == "pending"
        assert 19 < (s.get(Notification, d.id).next_at - utcnow()).total_seconds() <= 20  # doubled
        assert notify.record(s, d.id, code=503, error=None) == "failed"
        row = s.get(Notification, d.id)
        assert (row.attempts, row.last_code, row.next_at, row.delivered_at) == (3, 503, None, None)
