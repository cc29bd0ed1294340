"""Notifications stored: attached to a job or sweep at submit, made due once it ends, claimed by one sender at a
time, and each attempt's outcome recorded (the HTTP POST itself is the worker's: worker/notify.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import exists, func, or_, select, update
from sqlalchemy.orm import Session

from shared.lab.notify import backoff_seconds
from shared.lab.settings import settings
from shared.store.models import ACTIVE, FINISHED, Job, JobStatus, Notification, Sweep, utcnow

HOLD_SECONDS = 60  # a claimed delivery is the sender's this long: past the POST's timeout, a dead sender's lapses


@dataclass(frozen=True)
class Delivery:
    """One claimed attempt: where to POST and what."""

    id: int
    url: str
    attempt: int  # 1-based: this attempt's number
    payload: dict[str, Any]


def attach(url: str | None, *, job: Job | None = None, sweep: Sweep | None = None) -> None:
    """Give a new job or sweep its notification (nothing when `url` is None); the caller commits."""
    if url is not None:
        (job or sweep).notify = Notification(url=url, status="waiting")


def mark_ended(session: Session) -> int:
    """Waiting notifications whose job is finished, or whose sweep has no queued or running job left, become due."""
    now = utcnow()
    # Correlated EXISTS: only the few waiting rows are looked up (by primary key, by the jobs' sweep_id index).
    job_done = exists().where(Job.id == Notification.job_id, Job.status.in_([s.value for s in FINISHED]))
    busy = exists().where(Job.sweep_id == Notification.sweep_id, Job.status.in_([s.value for s in ACTIVE]))
    ended = or_(Notification.job_id.is_not(None) & job_done, Notification.sweep_id.is_not(None) & ~busy)
    n = session.execute(update(Notification).where(Notification.status == "waiting", ended)
                        .values(status="pending", ended_at=now, next_at=now)
                        .execution_options(synchronize_session=False)).rowcount
    session.commit()
    return n


def claim_due(session: Session, limit: int = 20) -> list[Delivery]:
    """Take the due deliveries for this sender alone (a conditional UPDATE each: one POST per attempt, fleet-wide)."""
    now = utcnow()
    free = or_(Notification.claimed_until.is_(None), Notification.claimed_until < now)
    due = session.scalars(select(Notification).where(Notification.status == "pending", Notification.next_at <= now,
                                                     free).order_by(Notification.next_at).limit(limit)).all()
    out = []
    for row in due:
        taken = session.execute(update(Notification).where(Notification.id == row.id, Notification.status == "pending",
                                                           free).values(claimed_until=now + timedelta(seconds=HOLD_SECONDS))
                                .execution_options(synchronize_session=False)).rowcount
        session.commit()
        if taken:
            out.append(Delivery(row.id, row.url, row.attempts + 1, payload(session, row)))
    return out


def payload(session: Session, row: Notification) -> dict[str, Any]:
    """The JSON the receiver gets: what ended, how, and its outcome."""
    base = {"notification_id": row.id, "ended_at": row.ended_at.isoformat() if row.ended_at else None}
    if row.job_id is not None:
        job = session.get(Job, row.job_id)
        return base | {"event": "job.ended", "job": {
            "id": job.id, "name": job.name, "status": job.status, "preset": job.preset, "model": job.model,
            "dataset": job.dataset, "error": job.error, "sweep_id": job.sweep_id,
            "test_accuracy": job.result.test_accuracy if job.result else None}}
    sweep = session.get(Sweep, row.sweep_id)
    counts = {s.value: 0 for s in JobStatus} | dict(session.execute(  # jobs by status
        select(Job.status, func.count()).where(Job.sweep_id == sweep.id).group_by(Job.status)).all())
    event = "study.ended" if sweep.study else "sweep.ended"
    return base | {"event": event, "sweep": {"id": sweep.id, "name": sweep.name, "study": sweep.study,
                                             "size": sweep.size, "counts": counts}}


def record(session: Session, delivery_id: int, *, code: int | None, error: str | None) -> str:
    """One attempt's outcome: delivered on a 2xx, else due again after the backoff, or failed past the attempts."""
    row = session.get(Notification, delivery_id)
    now, row.attempts, row.last_code, row.claimed_until = utcnow(), row.attempts + 1, code, None
    ok = code is not None and 200 <= code < 300 and error is None
    row.last_error = None if ok else (error or f"HTTP {code}")[:2000]
    if ok:
        row.status, row.delivered_at, row.next_at = "delivered", now, None
    elif row.attempts >= settings().notify_attempts:
        row.status, row.next_at = "failed", None
    else:
        row.next_at = now + timedelta(seconds=backoff_seconds(row.attempts))
    session.commit()
    return row.status
