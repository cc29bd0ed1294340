"""Thin Celery tasks: a job id in, the logic in worker.supervisor."""

from __future__ import annotations

import logging
import os

from celery.exceptions import Reject

from shared.store.publish import TASK_RUN_JOB
from worker import admission, supervisor
from worker.app import app


@app.task(name=TASK_RUN_JOB, bind=True)
def run_job(self, job_id: int) -> str:
    """Claim and train one job; the database row records the outcome. A job this worker's measured admission does
    not let in goes back to the broker unclaimed, for another slot or worker (acks_late: requeued, not acked)."""
    try:
        return supervisor.run_job(int(job_id), worker=f"{self.request.hostname}:{os.getpid()}")
    except admission.Declined as exc:
        raise Reject(exc, requeue=True) from None


def _not_a_declined_job(record: logging.LogRecord) -> bool:
    """Celery logs every Reject as a warning with its traceback; a job given back by admission is routine, and
    worker/admission.py has logged why already."""
    exc = record.exc_info[1] if record.exc_info else None
    return not (isinstance(exc, Reject) and isinstance(exc.reason, admission.Declined))


logging.getLogger("celery.app.trace").addFilter(_not_a_declined_job)
