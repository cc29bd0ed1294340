"""Job services shared by the API and the workers; the database row is the truth about a job."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy import String, cast, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from shared.lab.notify import NotifyRequest, check_notify
from shared.lab.packs import pack_key
from shared.lab.results import ResultDetails
from shared.lab.settings import settings
from shared.lab.specs import SpecWarning, resolve_checked
from shared.store.listing import order_by
from shared.store.models import FINISHED, Checkpoint, EpochMetric, EvalMetric, Job, JobAttempt, JobStatus, StepLoss, utcnow
from shared.store.notify import attach
from shared.store.tags import has_tag
from shared.train.runnable import check_runnable, queue_for


def lease_seconds() -> float:
    """A running job whose heartbeat is older than this is presumed orphaned (its worker died)."""
    return settings().lease_seconds


def lease_lapsed(job: Job) -> bool:
    """Whether a running job's lease has run out (its worker presumed dead: another may take it over)."""
    return job.heartbeat_at is None or job.heartbeat_at < utcnow() - timedelta(seconds=lease_seconds())


class NotFound(LookupError):
    """No such job (or checkpoint)."""


class Conflict(ValueError):
    """The job is in a state that does not allow the request."""


def create_job(session: Session, *, preset: str | None = None, overrides: dict | None = None,
               spec: dict | None = None, name: str | None = None, priority: int = 0, data_root=None,
               idempotency_key: str | None = None, fleet_check=None, notify: dict | None = None,
               workers_check=None) -> tuple[Job, bool]:
    """Validate and store a queued job, or find the one stored under `idempotency_key`; returns (job, created).

    `fleet_check(queue)` gives warnings about the queue's workers (asked only for the gpu queue);
    `workers_check(queue, spec)` raises SpecError when the queue's live workers cannot run it (dataset, GPUs).
    The caller commits, then enqueues; with a key, the session holds nothing else yet."""
    checked = resolve_checked(preset, overrides, spec)
    url = check_notify(None if notify is None else NotifyRequest.model_validate(notify))
    resolved = checked.spec
    check_runnable(resolved, data_root)
    queue = queue_for(resolved)
    if workers_check is not None:
        workers_check(queue, resolved)
    warned: list[SpecWarning] = checked.warnings + (fleet_check(queue) if fleet_check and queue == "gpu" else [])
    job = Job(name=name, preset=preset, model=resolved.model, dataset=resolved.dataset, spec=resolved.model_dump(),
              status=JobStatus.QUEUED, queue=queue, priority=priority, warnings=[w.model_dump() for w in warned],
              idempotency_key=idempotency_key, dispatched_at=utcnow())  # the caller sends it right after commit
    if idempotency_key is not None:
        earlier = _same_request(session, job)
        if earlier is not None:
            return earlier, False
    session.add(job)
    try:
        session.flush()
    except IntegrityError:  # a concurrent POST with the same key won the unique index: answer with its job
        session.rollback()
        earlier = _same_request(session, job)
        if earlier is None:
            raise
        return earlier, False
    attach(url, job=job)
    return job, True


def scoped_key(owner: str, key: str) -> str:
    """What a job stores for its Idempotency-Key: the key within its token's name (another token's equal key is
    another key), hashed to fit the column (sha256 hex, 64 chars)."""
    return hashlib.sha256(f"{owner}\n{key}".encode()).hexdigest()


def _same_request(session: Session, job: Job) -> Job | None:
    """The job stored under `job`'s idempotency key, if any; a different request under that key is a Conflict."""
    earlier = session.scalars(select(Job).where(Job.idempotency_key == job.idempotency_key)).first()
    if earlier is not None and (earlier.spec, earlier.preset, earlier.name, earlier.priority) != \
            (job.spec, job.preset, job.name, job.priority):
        raise Conflict(f"this Idempotency-Key was used for another request (job {earlier.id})")
    return earlier


def get_job(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"job {job_id} not found")
    return job


def get_jobs(session: Session, ids: list[int]) -> list[Job]:
    """The jobs in `ids`' order, their results loaded; NotFound naming every id that has no job."""
    found = {j.id: j for j in session.scalars(select(Job).where(Job.id.in_(ids)).options(selectinload(Job.result)))}
    missing = [i for i in ids if i not in found]
    if missing:
        raise NotFound(f"no job {', '.join(map(str, missing))}")
    return [found[i] for i in ids]


def list_jobs(session: Session, *, status: str | None = None, preset: str | None = None, model: str | None = None,
              dataset: str | None = None, sweep_id: int | None = None, q: str | None = None, tag: str | None = None,
              archived: bool | None = False, sort: str | None = None, limit: int = 50,
              offset: int = 0) -> tuple[list[Job], int]:
    """Filtered, sorted by `sort` (`field` / `-field`, default newest first); one page and the total count
    (the API's JobQuery validates filters)."""
    query = job_filter(labelled(select(Job), tag, archived), status=status, preset=preset, model=model,
                       dataset=dataset, sweep_id=sweep_id, q=q)
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    page = query.options(selectinload(Job.result)).order_by(*order_by(sort, session.get_bind().dialect.name))
    jobs = session.scalars(page.limit(limit).offset(offset)).all()
    return list(jobs), total


def job_filter(query, *, status=None, preset=None, model=None, dataset=None, sweep_id=None, q=None):
    """The list's WHERE: one condition per given filter (`q`: a case-insensitive substring of the name or of a tag)."""
    for column, value in ((Job.status, status), (Job.preset, preset), (Job.model, model), (Job.dataset, dataset),
                          (Job.sweep_id, sweep_id)):
        if value is not None:
            query = query.where(column == value)
    if q:
        pattern = "%" + q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        # Tags are a JSON list: a substring of its text finds ASCII tags (SQLite stores others \u-escaped), and an
        # exact tag is matched as the tag filter does, whatever its characters.
        query = query.where(or_(func.lower(Job.name).like(pattern, escape="\\"),
                                func.lower(cast(Job.tags, String)).like(pattern, escape="\\"), has_tag(Job.tags, q)))
    return query


def labelled(query, tag: str | None, archived: bool | None):
    """Only jobs with `tag` (if given) and, unless `archived` is None, only archived or only unarchived ones."""
    if tag is not None:
        query = query.where(has_tag(Job.tags, tag))
    return query if archived is None else query.where(Job.archived.is_(archived))


def request_cancel(session: Session, job_id: int) -> Job:
    """A queued job is cancelled at once; a running one is flagged and stops at its next step boundary."""
    job = get_job(session, job_id)
    now = utcnow()
    done = session.execute(update(Job).where(Job.id == job_id, Job.status == JobStatus.QUEUED)
                           .values(status=JobStatus.CANCELLED, finished_at=now, cancel_requested=True)).rowcount
    if not done:
        done = session.execute(update(Job).where(Job.id == job_id, Job.status == JobStatus.RUNNING)
                               .values(cancel_requested=True)).rowcount
    if not done:
        session.refresh(job)  # report the state it has now, not the one read before the updates
        raise Conflict(f"job {job_id} is already {job.status}")
    session.refresh(job)
    return job


def _orphaned(now, lease: float | None):
    """SQL condition: running, but the worker has not renewed its lease in time."""
    return (Job.status == JobStatus.RUNNING) & (Job.heartbeat_at < now - timedelta(seconds=lease or lease_seconds()))


def claim(session: Session, job_id: int, worker: str, lease: float | None = None) -> Job | None:
    """Atomically take a queued job, or a running one whose worker stopped heartbeating; None if not ours."""
    now = utcnow()
    stale = _orphaned(now, lease)
    # An orphaned job that was asked to cancel is simply ended: nobody is left to stop it.
    session.execute(update(Job).where(Job.id == job_id, stale, Job.cancel_requested.is_(True))
                    .values(status=JobStatus.CANCELLED, finished_at=now))
    taken = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.cancel_requested.is_(False), or_(Job.status == JobStatus.QUEUED, stale))
        .values(status=JobStatus.RUNNING, worker=worker, heartbeat_at=now, attempts=Job.attempts + 1,
                started_at=func.coalesce(Job.started_at, now), error=None)
    ).rowcount
    session.commit()
    if not taken:
        return None
    job = session.get(Job, job_id)
    session.refresh(job)
    return job


def claim_pack_mates(session: Session, job: Job, worker: str, limit: int) -> list[Job]:
    """Claim, for one pack with `job` (claimed already), the queued jobs of its sweep whose spec differs from its own
    only in fields a pack carries per member (shared.lab.packs: seed, lr, weight_decay, momentum, label_smoothing;
    so a cell's seeds, and a learning-rate sweep's cells): at most `limit`, its own cell first, never one with a
    checkpoint (a resumed job runs alone). Each is taken with the same conditional UPDATE as `claim`, so a job
    another worker took meanwhile is simply left out."""
    if job.sweep_id is None or limit < 1:
        return []
    same = pack_key(job.spec)
    has_checkpoint = select(Checkpoint.id).where(Checkpoint.job_id == Job.id).exists()
    mates = session.scalars(select(Job).where(
        Job.sweep_id == job.sweep_id, Job.id != job.id, Job.status == JobStatus.QUEUED,
        Job.cancel_requested.is_(False), ~has_checkpoint).order_by(Job.id)).all()
    mates = list(mates)
    mates.sort(key=lambda m: m.cell_index != job.cell_index)  # stable: the cell's own seeds, then the others
    taken, specs = [], [job.spec]
    for mate in mates:
        if len(taken) == limit:
            break
        # a spec twice (a grid that repeats a value) cannot pack: the trainer refuses members that repeat
        if mate.spec not in specs and pack_key(mate.spec) == same and claim(session, mate.id, worker):
            specs.append(mate.spec)
            taken.append(mate)
    return taken


def held_by(session: Session, job_id: int, worker: str) -> Job | None:
    """The job if `worker` holds it running (a claim that landed although its answer was lost), else None."""
    job = session.get(Job, job_id)
    return job if job is not None and job.status == JobStatus.RUNNING and job.worker == worker else None


def heartbeat(session: Session, job_id: int, worker: str) -> tuple[bool, bool]:
    """Renew the lease; returns (still ours, cancel requested)."""
    owned = session.execute(update(Job).where(Job.id == job_id, Job.worker == worker, Job.status == JobStatus.RUNNING)
                            .values(heartbeat_at=utcnow())).rowcount
    session.commit()
    cancel = session.scalar(select(Job.cancel_requested).where(Job.id == job_id))
    return bool(owned), bool(cancel)


def finish(session: Session, job_id: int, worker: str, status: JobStatus, error: str | None = None) -> bool:
    """End a running job we own; a no-op if another worker took it over meanwhile."""
    if status not in FINISHED:
        raise ValueError(f"{status} is not a finished status")
    done = session.execute(update(Job).where(Job.id == job_id, Job.worker == worker, Job.status == JobStatus.RUNNING)
                           .values(status=status, error=error, finished_at=utcnow())).rowcount
    session.commit()
    return bool(done)


def release(session: Session, job_id: int, worker: str, refund: bool = False) -> bool:
    """Give a running job we own back to the queue (its trainer was killed): the dispatcher sends it again.
    `refund`: the attempt does not count (a draining worker gave it back; nothing failed)."""
    done = session.execute(update(Job).where(Job.id == job_id, Job.worker == worker, Job.status == JobStatus.RUNNING)
                           .values(status=JobStatus.QUEUED, worker=None, heartbeat_at=None, dispatched_at=None,
                                   progress=None, attempts=Job.attempts - (1 if refund else 0))).rowcount
    session.commit()
    return bool(done)


def checkpoints_newest_first(session: Session, job_id: int) -> list[Checkpoint]:
    return list(session.scalars(select(Checkpoint).where(Checkpoint.job_id == job_id)
                                .order_by(Checkpoint.epoch.desc())))


def latest_checkpoint(session: Session, job_id: int) -> Checkpoint | None:
    return session.scalars(select(Checkpoint).where(Checkpoint.job_id == job_id)
                           .order_by(Checkpoint.epoch.desc()).limit(1)).first()


def discard_after(session: Session, job_id: int, epoch: int) -> None:
    """Before a retry resumes at `epoch`, drop what the lost attempt recorded past it."""
    for model in (StepLoss, EpochMetric, EvalMetric, Checkpoint):  # EvalMetric's epoch is fractional: 1.5 > 1
        session.execute(delete(model).where(model.job_id == job_id, model.epoch > epoch))
    session.commit()


def record_attempt(session: Session, job_id: int, attempt: int, worker: str, start_epoch: int) -> None:
    """Add the attempt to the job's attempt log, or set where it resumed (a merge: writing it again, after a lost
    commit or once the checkpoint is known, updates the one row)."""
    row = session.get(JobAttempt, (job_id, attempt))
    if row is None:
        session.add(JobAttempt(job_id=job_id, attempt=attempt, worker=worker, started_at=utcnow(),
                               start_epoch=start_epoch))
    else:
        row.worker, row.start_epoch = worker, start_epoch


def get_checkpoint(session: Session, job_id: int, epoch: int) -> Checkpoint:
    get_job(session, job_id)
    ckpt = session.scalars(select(Checkpoint).where(Checkpoint.job_id == job_id, Checkpoint.epoch == epoch)).first()
    if ckpt is None:
        raise NotFound(f"job {job_id} has no checkpoint for epoch {epoch}")
    return ckpt


def metrics(session: Session, job_id: int) -> tuple[list[EpochMetric], list[StepLoss], list[EvalMetric]]:
    """A job's per-epoch metrics, its step losses and its evaluation points, in order."""
    get_job(session, job_id)
    epochs = session.scalars(select(EpochMetric).where(EpochMetric.job_id == job_id).order_by(EpochMetric.epoch))
    steps = session.scalars(select(StepLoss).where(StepLoss.job_id == job_id).order_by(StepLoss.global_step))
    points = session.scalars(select(EvalMetric).where(EvalMetric.job_id == job_id).order_by(EvalMetric.samples_seen))
    return list(epochs), list(steps), list(points)


def result_details(job: Job) -> ResultDetails | None:
    """The details of the job's result (its result row loaded), typed; rows of older versions load with defaults."""
    return None if job.result is None else ResultDetails.stored(job.result.details)
