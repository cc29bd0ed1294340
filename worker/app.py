"""The Celery app the workers run (`celery -A worker.app worker`)."""

from __future__ import annotations

import logging
import threading
import time

from celery.signals import worker_process_init, worker_ready

from shared.store import jobs
from shared.store.db import forget_connections, session_scope
from shared.store.publish import enqueue, make_celery
from worker import warm

app = make_celery()
app.conf.include = ["worker.tasks"]
log = logging.getLogger(__name__)


def requeue_orphans(queued: bool) -> int:
    """Send again the jobs whose worker died (lease lapsed) and, if `queued`, the queued ones.

    A duplicate message is harmless: the claim in the database lets one delivery run the job.
    """
    try:
        with session_scope() as s:
            orphans = [(j.id, j.queue, j.priority) for j in jobs.orphaned_jobs(s, queued=queued)]
    except Exception as exc:  # noqa: BLE001 - a worker without its database keeps running and tries again
        log.warning("could not look for orphaned jobs: %s", exc)
        return 0
    try:
        for job_id, queue, priority in orphans:
            enqueue(job_id, queue, priority, app=app)
    except Exception as exc:  # noqa: BLE001 - the broker is down: the next round tries again
        log.warning("could not re-enqueue orphaned jobs: %s", exc)
        return 0
    if orphans:
        log.info("re-enqueued %d jobs", len(orphans))
    return len(orphans)


def _watch_leases() -> None:
    while True:
        time.sleep(jobs.lease_seconds() / 2)
        requeue_orphans(queued=False)


@worker_ready.connect
def on_ready(sender=None, **_):
    """Queued jobs (stored while the broker was down) are sent once at start; orphaned ones all the time."""
    requeue_orphans(queued=True)
    threading.Thread(target=_watch_leases, name="cnnlab-leases", daemon=True).start()


@worker_process_init.connect
def on_fork(**_):
    forget_connections()  # a pool process must not share the parent's database connections
    warm.prestart()  # this slot's trainer imports torch while the pool waits for its first job
