"""The trainer's writes: a job's progress, step losses, evaluation points, epochs, checkpoints and result.

The trainer (worker/trainer.py) reports from a background thread and never writes SQL: it asks this module for a
`Write`, queues it, and `send`s the queue in order. A Write is SQL statements run in one transaction, so one the
database missed (an outage) can be sent again as a whole; a row that a lost commit already wrote counts as written.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.lab.results import EpochMetrics, EvalPoint, ResultDetails, RunSummary
from shared.lab.specs import Spec
from shared.store.db import retry
from shared.store.models import Checkpoint, EpochMetric, EvalMetric, Job, Result, StepLoss, utcnow


@dataclass(frozen=True)
class Write:
    """SQL statements sent in one transaction, in order; sent again as a whole while the database is down."""

    statements: tuple


def progress(job_id: int, values: dict) -> Write:
    """The job's progress (phase, epoch, step, fraction, ETA: see DbReporter) replaced by `values`."""
    return Write((update(Job).where(Job.id == job_id).values(progress=values),))


def step_loss(job_id: int, epoch: int, step: int, global_step: int, loss: float, samples_seen: int) -> Write:
    return Write((insert(StepLoss).values(job_id=job_id, epoch=epoch, step=step, global_step=global_step,
                                          loss=loss, samples_seen=samples_seen),))


def eval_point(job_id: int, point: EvalPoint) -> Write:
    return Write((insert(EvalMetric).values(job_id=job_id, **point.model_dump()),))


def epoch_metrics(job_id: int, metrics: EpochMetrics) -> Write:
    return Write((insert(EpochMetric).values(job_id=job_id, **metrics.model_dump()),))


def checkpoint_uploaded(job_id: int, epoch: int, key: str, sha256: str, size_bytes: int,
                        prune_through: int | None = None) -> Write:
    """Record a checkpoint that is in the artifact store, whole; forget those of epochs <= `prune_through`."""
    statements = [insert(Checkpoint).values(job_id=job_id, epoch=epoch, key=key, sha256=sha256, size_bytes=size_bytes,
                                            created_at=utcnow())]
    if prune_through is not None:
        statements.append(delete(Checkpoint).where(Checkpoint.job_id == job_id, Checkpoint.epoch <= prune_through))
    return Write(tuple(statements))


def send(write: Write, what: str) -> None:
    """Execute `write` in one transaction, waiting out an outage (shared.store.db.retry). A row that is already
    there after a failed attempt (the commit landed but its answer was lost) counts as written."""
    tries = 0

    def attempt(s: Session) -> None:
        nonlocal tries
        tries += 1
        try:
            for statement in write.statements:
                s.execute(statement)
            s.flush()
        except IntegrityError:
            if tries == 1:
                raise
            s.rollback()  # an earlier try's commit landed: nothing left to write

    retry(attempt, what=what)


def set_progress(job_id: int, values: dict) -> None:
    """`progress` written now (not queued), waiting out an outage."""
    send(progress(job_id, values), what=f"job {job_id}'s progress")


def save_result(job_id: int, summary: RunSummary, details: ResultDetails, done: dict) -> None:
    """Store the job's result and its final progress; an upsert, so a retry after a lost commit writes the same row."""
    row = summary.model_dump(include=set(RunSummary.model_fields))

    def store(s: Session) -> None:
        s.merge(Result(job_id=job_id, details=details.model_dump(mode="json", exclude_defaults=True), **row))
        s.execute(update(Job).where(Job.id == job_id).values(progress=done))

    retry(store, what=f"job {job_id}'s result")


def job_specs(job_ids: list[int]) -> dict[int, Spec]:
    """The stored spec of each job, waiting out an outage."""
    return retry(lambda s: {j: Spec.model_validate(s.get(Job, j).spec) for j in job_ids},
                 what=f"reading job{'s' if len(job_ids) > 1 else ''} {', '.join(map(str, job_ids))}")
