"""The Celery app the workers run (`celery -A worker.app worker`)."""

from __future__ import annotations

import logging

from celery.signals import worker_ready

from shared import jobs
from shared.db import session_scope
from shared.queue import TASK_RUN_JOB, make_celery, redis_priority

app = make_celery()
app.conf.include = ["worker.tasks"]
log = logging.getLogger(__name__)


@worker_ready.connect
def requeue_orphans(sender=None, **_):
    """Jobs stored while the broker was down, or left running by a dead worker, are sent again.

    A duplicate message is harmless: the claim in the database lets one delivery run the job.
    """
    try:
        with session_scope() as s:
            orphans = [(j.id, j.queue, j.priority) for j in jobs.orphaned_jobs(s)]
    except Exception as exc:  # noqa: BLE001 - a worker without its database should still start and retry later
        log.warning("could not look for orphaned jobs: %s", exc)
        return
    for job_id, queue, priority in orphans:
        app.send_task(TASK_RUN_JOB, args=[job_id], queue=queue, priority=redis_priority(priority))
    if orphans:
        log.info("re-enqueued %d queued/orphaned jobs", len(orphans))
