"""The fleet as the database sees it, for the API's Prometheus `/metrics`: counts, heartbeats and recent durations."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.store.models import EpochMetric, Job, JobStatus, utcnow

RECENT = 1000  # finished jobs and epochs the duration figures are drawn from


@dataclass(frozen=True)
class Fleet:
    """One scrape's figures; durations and ages in seconds."""

    jobs: dict[tuple[str, str], int]  # (status, queue) -> jobs
    queue_depth: dict[str, int]  # queue -> queued jobs
    retries: int  # attempts beyond the first, over all jobs
    heartbeat_ages: dict[str, float]  # busy worker -> seconds since its newest heartbeat (nan: none yet)
    job_seconds: list[float]  # start to finish, the RECENT newest finished jobs
    epoch_seconds: list[float]  # wall time of the RECENT newest epochs


def fleet(session: Session) -> Fleet:
    """Everything `/metrics` reports, read in one session."""
    return Fleet(jobs=_jobs(session), queue_depth=_depths(session), retries=_retries(session),
                 heartbeat_ages=_heartbeat_ages(session), job_seconds=_job_seconds(session),
                 epoch_seconds=list(session.scalars(select(EpochMetric.seconds).order_by(EpochMetric.id.desc())
                                                    .limit(RECENT))))


def _jobs(session: Session) -> dict[tuple[str, str], int]:
    rows = session.execute(select(Job.status, Job.queue, func.count()).group_by(Job.status, Job.queue))
    return {(status, queue): n for status, queue, n in rows}


def _depths(session: Session) -> dict[str, int]:
    rows = session.execute(select(Job.queue, func.count()).where(Job.status == JobStatus.QUEUED).group_by(Job.queue))
    return {queue: n for queue, n in rows}


def _retries(session: Session) -> int:
    return session.scalar(select(func.coalesce(func.sum(Job.attempts - 1), 0)).where(Job.attempts > 1))


def _heartbeat_ages(session: Session) -> dict[str, float]:
    now = utcnow()
    rows = session.execute(select(Job.worker, func.max(Job.heartbeat_at)).where(Job.status == JobStatus.RUNNING)
                           .group_by(Job.worker))
    return {worker or "?": (now - beat).total_seconds() if beat else float("nan") for worker, beat in rows}


def _job_seconds(session: Session) -> list[float]:
    rows = session.execute(select(Job.started_at, Job.finished_at)
                           .where(Job.finished_at.is_not(None), Job.started_at.is_not(None))
                           .order_by(Job.finished_at.desc()).limit(RECENT)).all()
    return [(end - start).total_seconds() for start, end in rows]
