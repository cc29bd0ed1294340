"""The queues as workers see them: live workers (Celery's remote control), queue depths and the waiting order."""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from shared.lab.settings import settings
from shared.lab.specs import Spec, SpecError, SpecWarning
from shared.store.models import Job, JobStatus, utcnow
from shared.store.publish import TASK_RUN_JOB, client
from shared.train.datasets import DOWNLOADABLE, looked_for
from shared.train.launch import gpu_shortfall

log = logging.getLogger(__name__)
QUEUES = ("cpu", "gpu")  # the queues jobs are routed to (shared.store.jobs.queue_for)
CACHE_SECONDS = 5.0  # a page polled every 2 s asks the workers at most this often
_cache: dict[str, tuple[float, list[WorkerInfo] | None]] = {}
WORKERS_KEY = "cnnlab:workers"  # a Redis hash: worker name -> its last heartbeat (JSON), each with its expiry
HELD_KEY = "cnnlab:held"  # a Redis hash: job id -> why a worker's admission holds it back (JSON), with its expiry
_reports: dict[str, tuple[float, list[dict] | None]] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class WorkerInfo:
    """A live Celery worker: its node name, the queues it consumes and the job ids it runs now."""

    name: str
    queues: list[str]
    running: list[int] = field(default_factory=list)


def _job_ids(tasks: list[dict]) -> list[int]:
    out = []
    for t in tasks or []:
        args = t.get("args")
        if t.get("name") == TASK_RUN_JOB and isinstance(args, (list, tuple)) and args and isinstance(args[0], int):
            out.append(args[0])
    return out


def ask_workers(broker_url: str, timeout: float = 1.0) -> list[WorkerInfo] | None:
    """Every worker that answers within `timeout` seconds; None when the broker cannot be asked at all."""
    app = client(broker_url)
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=timeout)
        inspect = app.control.inspect(timeout=timeout)
        with ThreadPoolExecutor(2) as pool:  # both broadcasts wait the whole timeout: ask them together
            queues_f, active_f = pool.submit(inspect.active_queues), pool.submit(inspect.active)
            queues, active = queues_f.result() or {}, active_f.result() or {}
    except Exception as exc:  # noqa: BLE001 - no broker, or one without broadcast (filesystem): unknown
        log.info("cannot ask the workers: %s", exc)
        return None
    return [WorkerInfo(name=n, queues=sorted(q["name"] for q in qs), running=_job_ids(active.get(n, [])))
            for n, qs in sorted(queues.items())]


def live_workers(broker_url: str) -> list[WorkerInfo] | None:
    """`ask_workers`, remembered for CACHE_SECONDS per broker."""
    with _lock:
        hit = _cache.get(broker_url)
        if hit and time.monotonic() - hit[0] < CACHE_SECONDS:
            return hit[1]
    found = ask_workers(broker_url)
    with _lock:
        _cache[broker_url] = (time.monotonic(), found)
    return found


def served(workers: list[WorkerInfo] | None, queue: str) -> bool | None:
    """Whether some live worker consumes `queue`; None when the workers could not be asked."""
    return None if workers is None else any(queue in w.queues for w in workers)


def queue_warnings(broker_url: str, queue: str) -> list[SpecWarning]:
    """A submit-time warning when no live worker serves `queue` (the job is accepted and waits)."""
    state = served(live_workers(broker_url), queue)
    if state is None:
        return [SpecWarning(field="device", message=f"could not ask the workers whether any serves the {queue} "
                                                    "queue; the job waits until one does")]
    if not state:
        return [SpecWarning(field="device", message=f"no live worker serves the {queue} queue now; the job waits "
                                                    f"until one starts (e.g. `python -m worker --queues {queue}`)")]
    return []


def _redis(broker_url: str):
    """A client of the broker's Redis (short timeouts); None where the broker is not Redis."""
    if not broker_url.startswith("redis"):
        return None
    import redis  # only for a Redis broker: the filesystem broker needs none

    return redis.Redis.from_url(broker_url, socket_connect_timeout=1, socket_timeout=2)


def announce(broker_url: str, name: str, report: dict, ttl: float) -> None:
    """A worker's heartbeat: what it serves and holds (`report`: queues, datasets, data_dir, gpus), good for `ttl` s."""
    r = _redis(broker_url)
    if r is not None:
        r.hset(WORKERS_KEY, name, json.dumps(report | {"name": name, "until": time.time() + ttl}))


def withdraw(broker_url: str, name: str) -> None:
    """A worker that stops says so, rather than counting until its heartbeat expires."""
    r = _redis(broker_url)
    if r is not None:
        r.hdel(WORKERS_KEY, name)


def reports(broker_url: str) -> list[dict] | None:
    """The live workers' heartbeats (expired ones pruned), remembered CACHE_SECONDS; None if Redis cannot say."""
    with _lock:
        hit = _reports.get(broker_url)
        if hit and time.monotonic() - hit[0] < CACHE_SECONDS:
            return hit[1]
    try:
        r = _redis(broker_url)
        raw = r.hgetall(WORKERS_KEY) if r is not None else None
    except Exception as exc:  # noqa: BLE001 - Redis down: unknown, the submit goes on
        log.info("cannot read the workers' heartbeats: %s", exc)
        raw = None
    found = None if raw is None else [json.loads(v) for v in raw.values()]
    if found is not None:
        dead = [w["name"] for w in found if w.get("until", 0) < time.time()]
        found = [w for w in found if w["name"] not in dead]
        if dead:
            r.hdel(WORKERS_KEY, *dead)
    with _lock:
        _reports[broker_url] = (time.monotonic(), found)
    return found


def check_dataset(broker_url: str, queue: str, dataset: str) -> None:
    """SpecError naming `dataset` when the queue has live workers and none of them holds it (or may download it);
    no live worker, or none that reports, accepts the job: it waits for one."""
    live = [w for w in reports(broker_url) or [] if queue in w.get("queues", ())]
    if not live or any(dataset in w.get("datasets", ()) for w in live):
        return
    dirs = ", ".join(sorted({str(w.get("data_dir", "?")) for w in live}))
    raise SpecError([{"field": "dataset", "message": (
        f"no live worker of the {queue} queue has dataset {dataset!r}: looked for {looked_for(dataset)} in their "
        f"CNNLAB_DATA_DIR ({dirs}); put it there, or start a worker that has it (workers report their datasets "
        f"every {settings().dispatch_seconds:g} s: a folder just added counts from their next report)"
        + (" or may download it (CNNLAB_DOWNLOAD=1)" if dataset in DOWNLOADABLE else ""))}])


def check_gpus(broker_url: str, queue: str, spec: Spec) -> None:
    """SpecError naming world_size and both numbers when the queue's live workers report their GPUs and none can
    start its ranks (`auto` ranks run on a worker without GPUs: gloo); no live worker (or one that does not say)
    accepts the job: it waits for one."""
    live = [w for w in reports(broker_url) or [] if queue in w.get("queues", ())]
    if not live or any("gpus" not in w for w in live):
        return
    if any(gpu_shortfall(spec.device, spec.world_size, w["gpus"], "") is None for w in live):
        return
    most = max(w["gpus"] for w in live)
    short = gpu_shortfall(spec.device, spec.world_size, most, f"the live worker of the {queue} queue with the most")
    if short:
        raise SpecError([{"field": "world_size", "message": f"{short}: start a worker with {spec.world_size} GPUs "
                                                            f"(`python -m worker --gpus 0,1,...`) or lower world_size"}])


def check_workers(broker_url: str, queue: str, spec: Spec) -> None:
    """Every submit-time check against the queue's live workers (their datasets, their GPUs), errors together."""
    errors = []
    for check in (lambda: check_dataset(broker_url, queue, spec.dataset), lambda: check_gpus(broker_url, queue, spec)):
        try:
            check()
        except SpecError as exc:
            errors += exc.errors
    if errors:
        raise SpecError(errors)


def hold(broker_url: str, job_id: int, why: str, ttl: float) -> None:
    """A worker's admission holds a queued job back (worker/admission.py): why, in words, good for `ttl` s."""
    r = _redis(broker_url)
    if r is not None:
        r.hset(HELD_KEY, str(job_id), json.dumps({"why": why, "until": time.time() + ttl}))


def unhold(broker_url: str, job_id: int) -> None:
    """The job was admitted: nothing holds it back any more."""
    r = _redis(broker_url)
    if r is not None:
        r.hdel(HELD_KEY, str(job_id))


def held(broker_url: str, job_id: int) -> str | None:
    """Why a worker's admission holds the job back now, if one does; None also when Redis cannot say."""
    try:
        r = _redis(broker_url)
        raw = r.hget(HELD_KEY, str(job_id)) if r is not None else None
    except Exception as exc:  # noqa: BLE001 - Redis down: the page goes without it
        log.info("cannot read why job %s is held: %s", job_id, exc)
        return None
    try:
        note = json.loads(raw) if raw else None
        return note["why"] if note and note.get("until", 0) >= time.time() else None
    except (ValueError, KeyError, TypeError, AttributeError):  # a note this version cannot read: no reason shown
        return None


def gpus_missing(job: Job, beats: list[dict] | None) -> str | None:
    """'no live worker of the gpu queue has the 2 GPUs world_size 2 needs (...)' for a job that needs more GPUs than
    any live worker of its queue reports; None when one has them, or when the heartbeats cannot say."""
    device, ranks = (job.spec or {}).get("device", "auto"), (job.spec or {}).get("world_size", 1)
    live = [w for w in beats or [] if job.queue in w.get("queues", ())]
    if beats is None or any("gpus" not in w for w in live):
        return None
    counts = [w["gpus"] for w in live] or [0]  # none live: as if one without GPUs (auto ranks still run)
    if any(gpu_shortfall(device, ranks, n, "") is None for n in counts):
        return None
    most = max(counts)
    return (f"no live worker of the {job.queue} queue has the {ranks} GPUs world_size {ranks} needs ("
            + (f"the most any has: {most})" if live else "none is live)"))


def explain_wait(session: Session, job: Job, broker_url: str, workers: list[WorkerInfo] | None) -> str | None:
    """`why_waiting` with what the workers' heartbeats (cached) and admissions (read afresh) say, from Redis."""
    if job.status != JobStatus.QUEUED:
        return None
    return why_waiting(session, job, workers, beats=reports(broker_url), held_back=held(broker_url, job.id))


def waiting_order():
    """The order workers take queued jobs in: priority (9 first), then oldest first."""
    return (Job.priority.desc(), Job.created_at, Job.id)


def waiting(session: Session, limit: int = 200) -> list[Job]:
    """Queued jobs in the order they will run, per queue interleaved by that order."""
    return list(session.scalars(select(Job).where(Job.status == JobStatus.QUEUED).order_by(*waiting_order())
                                .limit(limit)))


def depths(session: Session) -> dict[str, int]:
    """Queued jobs per queue (every known queue, zeros included)."""
    counts = dict(session.execute(select(Job.queue, func.count()).where(Job.status == JobStatus.QUEUED)
                                  .group_by(Job.queue)).all())
    return {q: counts.get(q, 0) for q in sorted(set(QUEUES) | set(counts))}


def position(session: Session, job: Job) -> int:
    """1-based place of a queued job in its queue: the queued jobs of that queue that run before it, plus one."""
    ahead = or_(Job.priority > job.priority,
                and_(Job.priority == job.priority,
                     or_(Job.created_at < job.created_at, and_(Job.created_at == job.created_at, Job.id < job.id))))
    return 1 + session.scalar(select(func.count()).select_from(Job).where(
        Job.status == JobStatus.QUEUED, Job.queue == job.queue, Job.id != job.id, ahead))


def why_waiting(session: Session, job: Job, workers: list[WorkerInfo] | None, beats: list[dict] | None = None,
                held_back: str | None = None) -> str | None:
    """Why a queued job has not started, in words: too few GPUs on the live workers (`beats`, their heartbeats), its
    place and the workers' state, and what a worker's admission said (`held_back`); None for a job not queued."""
    if job.status != JobStatus.QUEUED:
        return None
    short, text = gpus_missing(job, beats), _why_queued(session, job, workers)
    return "; ".join(t for t in (short, text, held_back) if t)


def _why_queued(session: Session, job: Job, workers: list[WorkerInfo] | None) -> str:
    """Its place in its queue, and whether the queue's workers are free, busy or gone."""
    place = position(session, job)
    where = f"position {place} in the {job.queue} queue" + (" (next to run)" if place == 1 else
                                                            f" ({place - 1} job{'s' if place > 2 else ''} ahead)")
    state = served(workers, job.queue)
    if state is False:
        return f"no live worker serves the {job.queue} queue; {where}"
    busy = [w for w in workers or [] if job.queue in w.queues and w.running]
    if state and len(busy) < sum(job.queue in w.queues for w in workers):
        return where  # a worker is free: the job starts in a moment
    if state:
        return f"{where}; every worker of the {job.queue} queue is busy" + behind(session, job)
    return f"{where} (the workers could not be asked)" + behind(session, job)


def behind(session: Session, job: Job) -> str:
    """'; behind job 12 (priority 0), which yields at its next checkpoint in ~40 s' for a job that preempts it;
    else the running job of its queue that should end soonest and its time left; '' when none runs."""
    for running, waiting_job in preemptions(session, job.queue):
        if waiting_job.id == job.id:
            eta = next_checkpoint_seconds(running)
            return (f"; behind job {running.id} (priority {running.priority}), which yields at its next checkpoint"
                    + (f" in ~{span(eta)}" if eta is not None else ""))
    running = session.scalars(select(Job).where(Job.status == JobStatus.RUNNING, Job.queue == job.queue)).all()
    if not running:
        return ""
    soonest = min(running, key=lambda j: (eta_seconds(j) is None, eta_seconds(j) or 0.0))
    left = eta_seconds(soonest)
    return f"; behind job {soonest.id} (priority {soonest.priority})" + (f", ~{span(left)} left" if left is not None else "")


def preemptions(session: Session, queue: str, grace: float = 0.0) -> list[tuple[Job, Job]]:
    """(running job, the queued job it yields to) on `queue`: the queued jobs of priority CNNLAB_PREEMPT_PRIORITY or
    more, waiting over `grace` seconds (no free worker took them), in waiting order, each paired with a running job
    of lower priority, the lowest first (then the latest started). Each running job yields to one waiting job."""
    since = utcnow() - timedelta(seconds=grace)
    urgent = session.scalars(select(Job).where(
        Job.status == JobStatus.QUEUED, Job.queue == queue, Job.priority >= settings().preempt_priority,
        Job.cancel_requested.is_(False), Job.created_at <= since).order_by(*waiting_order())).all()
    if not urgent:
        return []
    running = session.scalars(select(Job).where(
        Job.status == JobStatus.RUNNING, Job.queue == queue, Job.priority < urgent[0].priority,
        Job.cancel_requested.is_(False)).order_by(Job.priority, Job.started_at.desc(), Job.id.desc())).all()
    pairs = []
    for waiting_job, low in zip(urgent, running, strict=False):
        if low.priority >= waiting_job.priority:
            break
        pairs.append((low, waiting_job))
    return pairs


def preemptor(session: Session, job_id: int, grace: float) -> Job | None:
    """The queued job that running job `job_id` should yield to at its next checkpoint, if any (see `preemptions`)."""
    job = session.get(Job, job_id)
    if job is None or job.status != JobStatus.RUNNING:
        return None
    return next((w for r, w in preemptions(session, job.queue, grace) if r.id == job_id), None)


def eta_seconds(job: Job) -> float | None:
    """A running job's estimated seconds left: the trainer's estimate less the time since it was made."""
    p = job.progress or {}
    if p.get("eta_seconds") is None:
        return None
    since = (utcnow() - datetime.fromisoformat(p["reported_at"])).total_seconds() if p.get("reported_at") else 0.0
    return max(0.0, p["eta_seconds"] - since)


def next_checkpoint_seconds(job: Job) -> float | None:
    """About how long until a running job's next checkpoint (its epoch's end), from its steps left and its pace."""
    p, eta = job.progress or {}, eta_seconds(job)
    steps_left_run = (p.get("total_steps") or 0) - (p.get("global_step") or 0)
    if eta is None or steps_left_run <= 0 or p.get("steps") is None or p.get("step") is None:
        return eta
    return eta * max(0, p["steps"] - p["step"]) / steps_left_run


def span(seconds: float) -> str:
    """40 s, 3 min, 1.5 h."""
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    return f"{round(seconds / 60)} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"
