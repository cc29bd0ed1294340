"""What people do to a job after submitting it: edit its name, tags and notes, archive it, delete it; and
record a run trained elsewhere (`cnnlab train --server`) as a finished job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.lab.results import ResultDetails
from shared.lab.runs import LOCAL_QUEUE, LocalRun
from shared.store.files import delete_job_files
from shared.store.jobs import Conflict, get_job
from shared.store.models import FINISHED, EpochMetric, Job, JobStatus, Result, StepLoss

EDITABLE = frozenset({"name", "tags", "notes", "archived"})


def update_job(session: Session, job_id: int, changes: dict[str, Any]) -> Job:
    """Set the editable fields in `changes` (validated by the caller); any status."""
    unknown = set(changes) - EDITABLE
    if unknown:
        raise ValueError(f"not editable: {', '.join(sorted(unknown))}")
    job = get_job(session, job_id)
    for key, value in changes.items():
        setattr(job, key, value)
    session.flush()
    return job


def delete_job(session: Session, job_id: int, checkpoint_root: Path, store_url: str | None = None) -> list[Path]:
    """Delete a finished job, its rows and its files (returns the files that could not be removed); a queued or
    running job is a Conflict (cancel it first).

    The row goes first with a conditional DELETE, so a worker can never claim a job whose files are going; the
    files go after the commit (a crash between the two leaves files, never a job without its files)."""
    job = get_job(session, job_id)
    gone = session.execute(delete(Job).where(Job.id == job_id, Job.status.in_([s.value for s in FINISHED]))
                           .execution_options(synchronize_session=False)).rowcount
    if not gone:
        session.refresh(job)
        raise Conflict(f"job {job_id} is {job.status}: cancel it first (POST /jobs/{job_id}/cancel), "
                       f"then delete it once it has stopped")
    session.expunge(job)
    session.commit()
    return delete_job_files(job_id, checkpoint_root, store_url)


def record_run(session: Session, run: LocalRun, idempotency_key: str | None = None) -> tuple[Job, bool]:
    """Store a finished local run as a succeeded job on the `local` queue; returns (job, created).

    With a key, a retried request finds the job the first one stored."""
    if idempotency_key is not None:
        earlier = session.scalars(select(Job).where(Job.idempotency_key == idempotency_key)).first()
        if earlier is not None:
            return earlier, False
    spec = run.spec
    job = Job(name=run.name, preset=run.preset, model=spec.model, dataset=spec.dataset, spec=spec.model_dump(),
              status=JobStatus.SUCCEEDED, queue=LOCAL_QUEUE, worker=run.host, attempts=1, tags=run.tags,
              created_at=run.started_at, started_at=run.started_at, finished_at=run.finished_at,
              idempotency_key=idempotency_key,
              progress={"phase": "done", "epoch": run.result.epochs, "epochs": run.result.epochs, "fraction": 1.0})
    session.add(job)
    try:
        session.flush()
    except IntegrityError:  # a concurrent retry with the same key stored it first
        session.rollback()
        return record_run(session, run, idempotency_key)
    session.add_all([EpochMetric(job_id=job.id, **m.model_dump()) for m in run.epochs])
    session.add_all([StepLoss(job_id=job.id, **p.model_dump()) for p in run.steps])
    details = ResultDetails(confusion=run.confusion, misclassified=run.misclassified, history=run.epochs, local=True)
    session.add(Result(job_id=job.id, details=details.model_dump(mode="json", exclude_defaults=True),
                       **run.result.model_dump()))
    session.flush()
    return job, True
