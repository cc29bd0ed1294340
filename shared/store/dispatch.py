"""Dispatch that cannot lose a job: find the jobs whose broker message is gone and send them again, once.

A job's message can be lost when the broker restarts empty, or never sent when the broker was down at
submit time. Every worker runs `redispatch` periodically; a job is sent again only when

- it is queued (or running with a dead lease: its worker is gone),
- its id is in no broker queue, nor delivered to a worker within one lease (where the broker can be listed:
  Redis; a worker that received a job has a lease's time to claim it, as it has to renew a claim: an older
  delivery of a job still queued, or of a job whose lease died, belongs to a worker that is gone, and kombu
  would give it back only after the visibility timeout, hours later),
- and its last dispatch is older than `grace` seconds (so a message in flight is not doubled),

and the conditional UPDATE of its `dispatched_at` lets one worker alone send it per round, however many
workers watch. The claim in the database keeps runs exactly-once whatever duplicates remain.

On Redis one worker per round does the looking (a key set with NX that expires before the next round): with
N workers and a backlog of queued jobs, every worker listing the broker and loading every queued job every
round cost the fleet N times the work (measured with 8 workers on 2 cores: bench/results/fleet*.json).
"""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta

from celery import Celery
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from shared.store.jobs import lease_seconds
from shared.store.models import Job, JobStatus, utcnow
from shared.store.publish import enqueue

log = logging.getLogger(__name__)
# kombu's Redis transport keeps delivered, unacked messages in a hash (tag -> [message, exchange, routing key])
# and their delivery times in a sorted set (tag -> unix time).
UNACKED_KEY, UNACKED_INDEX_KEY = "unacked", "unacked_index"
ROUND_KEY = "cnnlab:dispatch-round"  # held by the worker that looks for lost jobs this round


def _job_id(raw: bytes | str) -> int | None:
    """The job id of one Celery message as kombu stores it in Redis (argsrepr '[12]'), or None."""
    try:
        msg = json.loads(raw)
        if isinstance(msg, list):  # an unacked entry: [message, exchange, routing_key]
            msg = msg[0]
        return int(json.loads(msg["headers"]["argsrepr"])[0])
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def _redis(app: Celery):
    """A client of the broker's Redis (short timeouts: a broker that is down fails the round, not the worker);
    None where the broker is not Redis."""
    if not app.conf.broker_url.startswith("redis"):
        return None
    import redis  # only for a Redis broker: the filesystem broker needs none

    return redis.Redis.from_url(app.conf.broker_url, socket_connect_timeout=2, socket_timeout=5)


def broker_job_ids(app: Celery, recent: float) -> set[int] | None:
    """Job ids waiting in the broker or delivered within `recent` seconds; None if the broker cannot be listed."""
    r = _redis(app)
    if r is None:
        return None
    fresh = r.zrangebyscore(UNACKED_INDEX_KEY, time.time() - recent, "+inf")
    raw = [m for m in (r.hmget(UNACKED_KEY, fresh) if fresh else []) if m is not None]
    for key in r.scan_iter(match="*", count=500):
        if r.type(key) == b"list":  # the queues and their priority lists (cpu, cpu:3, gpu, ...)
            raw += r.lrange(key, 0, -1)
    return {i for i in map(_job_id, raw) if i is not None}


def round_is_ours(app: Celery, grace: float) -> bool:
    """Whether this worker looks for lost jobs this round: on Redis the first of the fleet to ask in each `grace`
    seconds; elsewhere every worker (the conditional `take` still sends each job once)."""
    r = _redis(app)
    if r is None:
        return True
    # Expires a little before the next round, so some worker's next look always finds it free.
    return bool(r.set(ROUND_KEY, "1", nx=True, px=max(1, int(800 * grace))))


def candidates(session: Session, *, grace: float, lease: float) -> list[tuple[int, str, int]]:
    """(id, queue, priority) of the queued jobs, and running ones with a dead lease, last dispatched over `grace`
    seconds ago (columns, not rows: a backlog of thousands is read every round)."""
    now = utcnow()
    dead = (Job.status == JobStatus.RUNNING) & (Job.heartbeat_at < now - timedelta(seconds=lease))
    due = or_(Job.dispatched_at.is_(None), Job.dispatched_at < now - timedelta(seconds=grace))
    rows = session.execute(select(Job.id, Job.queue, Job.priority).where(or_(Job.status == JobStatus.QUEUED, dead), due))
    return [tuple(row) for row in rows]


def take(session: Session, job_id: int, *, grace: float) -> bool:
    """Mark the job dispatched now, unless another worker did within `grace` seconds: True if this one sends it."""
    now = utcnow()
    due = or_(Job.dispatched_at.is_(None), Job.dispatched_at < now - timedelta(seconds=grace))
    taken = session.execute(update(Job).where(Job.id == job_id, due).values(dispatched_at=now)).rowcount
    session.commit()
    return bool(taken)


def redispatch(session: Session, app: Celery, *, grace: float, lease: float | None = None,
               every_round: bool = False) -> list[int]:
    """Send again every job whose message is lost, if this round is ours (`every_round`: look regardless);
    returns the ids sent."""
    if not (every_round or round_is_ours(app, grace)):
        return []
    lease = lease or lease_seconds()
    lost = candidates(session, grace=grace, lease=lease)
    if not lost:
        return []
    present = broker_job_ids(app, recent=max(grace, lease))
    sent = []
    for job_id, queue, priority in lost:
        if present is not None and job_id in present:
            continue  # still waiting in the broker, or delivered to a worker that may yet claim it: not lost
        if take(session, job_id, grace=grace):
            enqueue(job_id, queue, priority, app=app)
            sent.append(job_id)
    if sent:
        log.info("re-sent %d jobs whose messages were lost: %s", len(sent), sent)
    return sent
