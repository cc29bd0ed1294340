"""A job's machine use: the supervisor's samples (CPU %, resident memory, GPU), and their summary in its result."""

from __future__ import annotations

import os
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from shared.lab.results import SystemSample, SystemSummary
from shared.store.models import Result, SystemMetric


def record(session: Session, job_id: int, sample: SystemSample) -> None:
    """Add one sample (the caller commits)."""
    session.add(SystemMetric(job_id=job_id, **sample.model_dump(exclude={"at"})))


def samples(session: Session, job_id: int) -> list[SystemSample]:
    """A job's samples, every attempt, in the order they were taken; `at` counts from its first attempt's start."""
    rows = list(session.scalars(select(SystemMetric).where(SystemMetric.job_id == job_id).order_by(SystemMetric.id)))
    if not rows:
        return []
    origin = rows[0].created_at - timedelta(seconds=rows[0].seconds)
    fields = set(SystemSample.model_fields) - {"at"}
    return [SystemSample(**{f: getattr(r, f) for f in fields}, at=round((r.created_at - origin).total_seconds(), 2))
            for r in rows]


def load_average() -> list[float]:
    """The host's 1, 5 and 15-minute load averages (empty where the system has none)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return []


def summarize(session: Session, job_id: int) -> SystemSummary | None:
    """Put the mean and peak of the job's samples, and the host's load now, into its result's details; commits.
    None (and nothing written) when the job has no result."""
    result = session.get(Result, job_id)
    if result is None:
        return None
    summary = SystemSummary.of(samples(session, job_id), load_average())
    result.details = {**(result.details or {}), "system": summary.model_dump()}
    flag_modified(result, "details")
    session.commit()
    return summary
