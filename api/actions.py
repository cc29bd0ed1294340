"""Acting on jobs: edit (name, tags, notes, archived), delete with their files, and record local runs."""

from __future__ import annotations

from flask import Blueprint, current_app, url_for

from api.auth import caller, require_manager
from api.db import session
from api.http import idempotency_key, json_body
from api.jobs import JOB
from api.schemas.actions import JobPatch, RunCreate
from api.schemas.jobs import JobOut
from shared.store import actions, tokens
from shared.store.jobs import get_job

bp = Blueprint("actions", __name__)


@bp.patch(JOB)
def patch_job(job_id: int):
    changes = JobPatch.model_validate(json_body()).model_dump(exclude_unset=True)
    with session() as s:
        require_manager(get_job(s, job_id).owner, f"job {job_id}")
        job = actions.update_job(s, job_id, changes)
        s.commit()
        return JobOut.of(job).model_dump(mode="json")


@bp.delete(JOB)
def delete_job(job_id: int):
    """A finished job goes with its metrics, result and files; a queued or running one is refused (409)."""
    with session() as s:
        require_manager(get_job(s, job_id).owner, f"job {job_id}")
        actions.delete_job(s, job_id, current_app.config["CHECKPOINT_DIR"], current_app.config["ARTIFACT_STORE"])
    return "", 204


@bp.post("/runs")
def record_run():
    run = RunCreate.model_validate(json_body())
    with session() as s:
        job, created = actions.record_run(s, run, idempotency_key())
        if created:  # finished already: it never counts against the caller's cap of active jobs
            tokens.claim(s, caller().name, job_ids=[job.id])
        s.commit()
        out = JobOut.of(job).model_dump(mode="json")
    return out, 201 if created else 200, {"Location": url_for("jobs.get_job", job_id=out["id"])}
