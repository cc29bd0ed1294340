"""Sweep services: create a sweep's jobs, enqueue them, count them, summarize each cell over its seeds, cancel."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, selectinload

from shared.lab.notify import check_notify
from shared.lab.stats import CellStats, Comparison, compare, summarize
from shared.lab.sweeps import Expansion, SweepRequest, cell_label, expand, stored_cells
from shared.store import publish
from shared.store.jobs import NotFound, check_runnable, queue_for
from shared.store.models import EpochMetric, Job, JobStatus, Sweep, utcnow
from shared.store.notify import attach

log = logging.getLogger(__name__)
CELL_METRICS = ("test_accuracy", "test_loss", "train_seconds")


class CellSummary(BaseModel):
    """A cell over its seeds: status counts and, over its succeeded runs (n), each metric's mean/std/ci95."""

    index: int
    values: dict[str, Any]
    label: str
    n: int
    succeeded: int
    failed: int
    cancelled: int
    queued: int
    running: int
    job_ids: list[int]
    test_accuracy: CellStats
    test_loss: CellStats
    train_seconds: CellStats


def create_sweep(session: Session, request: SweepRequest, *, data_root=None, study: str | None = None,
                 study_version: int | None = None, size: str | None = None, workers_check=None) -> Sweep:
    """Validate every cell, then store the sweep and its queued jobs (the caller commits, then `dispatch`es);
    `workers_check(queue, spec)` as for a job (shared/store/jobs.py `create_job`)."""
    def check(spec):
        check_runnable(spec, data_root)
        if workers_check is not None:
            workers_check(queue_for(spec), spec)

    url = check_notify(request.notify)
    plan = expand(request, check=check)
    sweep = Sweep(name=request.name, preset=request.base.preset, base=plan.base.model_dump(),
                  grid=request.stored_grid(),
                  seeds=plan.seeds, study=study, study_version=study_version, size=size, priority=request.priority)
    session.add(sweep)
    session.flush()
    session.add_all(_jobs(sweep, plan))
    attach(url, sweep=sweep)
    session.flush()
    return sweep


def _jobs(sweep: Sweep, plan: Expansion) -> list[Job]:
    title = sweep.name or f"sweep {sweep.id}"
    return [Job(name=f"{title} [{cell_label(cell.values)}] seed {seed}"[:200], preset=sweep.preset,
                model=spec.model, dataset=spec.dataset, spec=spec.model_dump(), status=JobStatus.QUEUED,
                queue=queue_for(spec), priority=sweep.priority, sweep_id=sweep.id,
                cell_index=cell.index, cell=cell.values, dispatched_at=utcnow())  # sent right after the commit
            for cell, seed, spec in plan.jobs()]


def dispatch(session: Session, sweep_id: int, broker: str | None = None) -> int:
    """Publish the sweep's queued jobs (after the commit); the first broker failure propagates.

    Like POST /jobs: what is not sent stays queued in the database, and the workers' dispatcher sends it.
    """
    rows = session.execute(select(Job.id, Job.queue, Job.priority).where(Job.sweep_id == sweep_id,
                                                                        Job.status == JobStatus.QUEUED)
                           .order_by(Job.id)).all()
    for job_id, queue, priority in rows:
        publish.enqueue(job_id, queue, priority, broker)
    return len(rows)


def get_sweep(session: Session, sweep_id: int) -> Sweep:
    sweep = session.get(Sweep, sweep_id)
    if sweep is None:
        raise NotFound(f"sweep {sweep_id} not found")
    return sweep


def list_sweeps(session: Session, *, limit: int = 50, offset: int = 0) -> tuple[list[Sweep], int]:
    """Newest first, one page and the total."""
    total = session.scalar(select(func.count()).select_from(Sweep))
    page = select(Sweep).order_by(Sweep.created_at.desc(), Sweep.id.desc()).limit(limit).offset(offset)
    return list(session.scalars(page)), total


def status_counts(session: Session, sweep_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """sweep id -> {status: jobs}, every status present (0 where none)."""
    ids = list(sweep_ids)
    out = {i: {s.value: 0 for s in JobStatus} for i in ids}
    rows = session.execute(select(Job.sweep_id, Job.status, func.count()).where(Job.sweep_id.in_(ids))
                           .group_by(Job.sweep_id, Job.status))
    for sweep_id, status, count in rows:
        out[sweep_id][status] = count
    return out


def sweep_jobs(session: Session, sweep_id: int) -> list[Job]:
    """The sweep's jobs with their results, cell by cell, seeds in order."""
    get_sweep(session, sweep_id)
    query = (select(Job).where(Job.sweep_id == sweep_id).options(selectinload(Job.result))
             .order_by(Job.cell_index, Job.id))
    return list(session.scalars(query))


def succeeded_epochs(session: Session, sweep_id: int) -> list[tuple[int, EpochMetric]]:
    """(cell index, epoch metrics) of the sweep's succeeded jobs, cell by cell, epochs in order."""
    return [(index, metric) for index, metric in session.execute(
        select(Job.cell_index, EpochMetric).join(EpochMetric, EpochMetric.job_id == Job.id)
        .where(Job.sweep_id == sweep_id, Job.status == JobStatus.SUCCEEDED)
        .order_by(Job.cell_index, EpochMetric.epoch))]


def _summary(index: int, values: dict[str, Any], members: list[Job]) -> CellSummary:
    counts = Counter(j.status for j in members)
    done = [j.result for j in members if j.status == JobStatus.SUCCEEDED and j.result is not None]
    metrics = {m: summarize([getattr(r, m) for r in done]) for m in CELL_METRICS}
    states = {s: counts[s] for s in ("succeeded", "failed", "cancelled", "queued", "running")}
    return CellSummary(index=index, values=values, label=cell_label(values), n=len(done), **states,
                       job_ids=[j.id for j in members], **metrics)


def cell_summaries(session: Session, sweep_id: int) -> list[CellSummary]:
    """Every cell (grid order, or as listed), with the statistics of its succeeded jobs."""
    sweep = get_sweep(session, sweep_id)
    by_cell: dict[int, list[Job]] = {}
    for job in sweep_jobs(session, sweep_id):
        by_cell.setdefault(job.cell_index, []).append(job)
    return [_summary(i, values, by_cell.get(i, [])) for i, values in enumerate(stored_cells(sweep.grid))]


def cancel_sweep(session: Session, sweep_id: int) -> dict[str, int]:
    """As request_cancel, for every job: queued ones end now, running ones stop at their next step boundary."""
    get_sweep(session, sweep_id)
    now = utcnow()
    ended = session.execute(update(Job).where(Job.sweep_id == sweep_id, Job.status == JobStatus.QUEUED)
                            .values(status=JobStatus.CANCELLED, finished_at=now, cancel_requested=True)).rowcount
    asked = session.execute(update(Job).where(Job.sweep_id == sweep_id, Job.status == JobStatus.RUNNING,
                                              Job.cancel_requested.is_(False))
                            .values(cancel_requested=True)).rowcount
    return {"cancelled": ended, "stopping": asked}


def values_of(session: Session, job_ids: Iterable[int], metric: str = "test_accuracy") -> list[float]:
    """The metric over those of the jobs that succeeded (with a result)."""
    ids = list(job_ids)
    jobs = session.scalars(select(Job).where(Job.id.in_(ids)).options(selectinload(Job.result))).all()
    missing = set(ids) - {j.id for j in jobs}
    if missing:
        raise NotFound(f"no job {', '.join(map(str, sorted(missing)))}")
    return [getattr(j.result, metric) for j in jobs if j.status == JobStatus.SUCCEEDED and j.result is not None]


def compare_groups(session: Session, a: Iterable[int], b: Iterable[int], *, metric: str = "test_accuracy",
                   names: tuple[str, str] = ("A", "B")) -> Comparison:
    """Two groups of jobs (each its succeeded runs) compared on `metric` (Welch)."""
    return compare(values_of(session, a, metric), values_of(session, b, metric), metric=metric, names=names)


def compare_cells(session: Session, sweep_id: int, a: int, b: int, *, metric: str = "test_accuracy",
                  names: tuple[str, str] | None = None) -> Comparison:
    """Cell b against cell a of a sweep; names default to the cells' labels."""
    summaries = cell_summaries(session, sweep_id)
    for index in (a, b):
        if not 0 <= index < len(summaries):
            raise NotFound(f"sweep {sweep_id} has no cell {index} (it has {len(summaries)})")
    ca, cb = summaries[a], summaries[b]
    return compare_groups(session, ca.job_ids, cb.job_ids, metric=metric, names=names or (ca.label, cb.label))

