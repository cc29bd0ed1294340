"""Jobs: submit, list, inspect, follow metrics, cancel, download checkpoints."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, request, stream_with_context, url_for

from api.auth import own, require_manager
from api.db import session
from api.errors import APIError
from api.http import idempotency_key, json_body
from api.schemas.fields import MAX_ID
from api.schemas.jobs import CheckpointList, CheckpointOut, JobCreate, JobList, JobOut, JobQuery, Metrics, SystemOut, listed
from shared.store import artifacts, fleet, jobs, publish, system
from shared.store.models import JobStatus

bp = Blueprint("jobs", __name__)
JOB = f"/jobs/<int(max={MAX_ID}):job_id>"
log = logging.getLogger(__name__)


@bp.post("/jobs")
def create_job():
    body = JobCreate.model_validate(json_body())
    key = idempotency_key()
    with session() as s:
        job, created = jobs.create_job(s, **body.model_dump(), data_root=current_app.config["DATA_DIR"],
                                       idempotency_key=key, fleet_check=_fleet_check,
                                       workers_check=workers_check)
        if created:
            own(s, job_ids=[job.id])
        s.commit()  # stored before it is enqueued: a worker never sees an id the database lacks
        out = JobOut.of(job).model_dump(mode="json")
    if not created and out["status"] != JobStatus.QUEUED:
        return out, 200, {"Location": url_for("jobs.get_job", job_id=out["id"])}
    # A retry of a POST answered 503 sends its still-queued job again: the claim keeps runs exactly-once.
    try:
        publish.enqueue(out["id"], out["queue"], out["priority"], current_app.config["BROKER_URL"])
    except Exception as exc:  # noqa: BLE001 - broker down: the job stays queued; the dispatcher sends it
        log.warning("enqueue of job %s failed: %s", out["id"], exc)
        raise APIError(503, f"job {out['id']} is stored but the broker is unreachable; it will be dispatched "
                            f"once the broker is back", {"job": out}) from None
    return out, 201 if created else 200, {"Location": url_for("jobs.get_job", job_id=out["id"])}


@bp.get("/jobs")
def list_jobs():
    q = JobQuery.model_validate(request.args.to_dict())
    with session() as s:
        items, total = jobs.list_jobs(s, **q.model_dump())
        columns, page = listed(items)
    more = q.offset + len(page) < total
    nxt = url_for("jobs.list_jobs", **{**request.args.to_dict(), "offset": q.offset + q.limit}) if more else None
    return JobList(columns=columns, items=page, total=total, limit=q.limit, offset=q.offset,
                   next=nxt).model_dump(mode="json")


def _fleet_check(queue: str):
    return fleet.queue_warnings(current_app.config["BROKER_URL"], queue)


def workers_check(queue: str, spec) -> None:
    """Refuse (422) a spec no live worker of the queue can run: a dataset none has, more ranks than any has GPUs
    (their heartbeats say which)."""
    fleet.check_workers(current_app.config["BROKER_URL"], queue, spec)


@bp.get(JOB)
def get_job(job_id: int):
    """The job; while it is queued, why it waits (the workers asked at most every few seconds)."""
    with session() as s:
        job = jobs.get_job(s, job_id)
        out = JobOut.of(job)
        if job.status == JobStatus.QUEUED:
            broker = current_app.config["BROKER_URL"]
            out.waiting = fleet.explain_wait(s, job, broker, fleet.live_workers(broker))
        return out.model_dump(mode="json")


@bp.get(JOB + "/system")
def get_system(job_id: int):
    with session() as s:
        job = jobs.get_job(s, job_id)
        return SystemOut.of(system.samples(s, job_id), jobs.result_details(job)).model_dump(mode="json")


@bp.get(JOB + "/metrics")
def get_metrics(job_id: int):
    with session() as s:
        return Metrics.of(*jobs.metrics(s, job_id)).model_dump(mode="json")


@bp.post(JOB + "/cancel")
def cancel_job(job_id: int):
    with session() as s:
        require_manager(jobs.get_job(s, job_id).owner, f"job {job_id}")
        return JobOut.of(jobs.request_cancel(s, job_id)).model_dump(mode="json"), 202


@bp.get(JOB + "/checkpoints")
def list_checkpoints(job_id: int):
    with session() as s:
        job = jobs.get_job(s, job_id)
        items = [CheckpointOut.of(c, url_for("jobs.get_checkpoint", job_id=job_id, epoch=c.epoch))
                 for c in job.checkpoints]
    return CheckpointList(items=items).model_dump(mode="json")


@bp.get(JOB + f"/checkpoints/<int(max={MAX_ID}):epoch>")
def get_checkpoint(job_id: int, epoch: int):
    with session() as s:
        ckpt = jobs.get_checkpoint(s, job_id, epoch)
        require_manager(jobs.get_job(s, job_id).owner, f"job {job_id}")
    try:  # never serve a corrupt file: hash it first (VGG's ~110 MB: ~0.3 s from a local disk), then stream it
        chunks = artifacts.stream_verified(ckpt.key, ckpt.sha256, current_app.config["ARTIFACT_STORE"])
    except artifacts.MissingArtifact:
        raise APIError(410, f"checkpoint file for job {job_id} epoch {epoch} is no longer in the artifact store") from None
    except artifacts.CorruptArtifact:
        raise APIError(410, f"checkpoint file for job {job_id} epoch {epoch} is corrupt (sha256 differs from "
                            f"the recorded {ckpt.sha256[:12]}…)") from None
    resp = Response(stream_with_context(chunks), mimetype="application/octet-stream")
    resp.headers["Content-Disposition"] = f"attachment; filename=job{job_id}-epoch{epoch:03d}.pt"
    resp.headers["Content-Length"] = str(ckpt.size_bytes)
    resp.headers["X-Checkpoint-SHA256"] = ckpt.sha256
    resp.set_etag(ckpt.sha256)
    return resp
