"""Thin Celery tasks: a job id in, the logic in worker.supervisor."""

from __future__ import annotations

import os

from shared.store.publish import TASK_RUN_JOB
from worker import supervisor
from worker.app import app


@app.task(name=TASK_RUN_JOB, bind=True)
def run_job(self, job_id: int) -> str:
    """Claim and train one job; the database row records the outcome."""
    return supervisor.run_job(int(job_id), worker=f"{self.request.hostname}:{os.getpid()}")
