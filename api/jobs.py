"""Jobs: submit, list, inspect, follow metrics, cancel, download checkpoints."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any, Literal

from flask import Blueprint, current_app, request, send_file, url_for
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from api.db import session
from api.errors import APIError
from shared import jobs, queue
from shared.db import STATUSES

bp = Blueprint("jobs", __name__)
MAX_ID = 2**31 - 1  # the id columns are 32-bit integers: larger ids match no route (404)
JOB = f"/jobs/<int(max={MAX_ID}):job_id>"
log = logging.getLogger(__name__)


class JobCreate(BaseModel):
    """POST /jobs body: a preset with overrides, or a full spec."""

    model_config = ConfigDict(extra="forbid")

    preset: str | None = Field(None, description="a preset name, see GET /presets")
    overrides: dict[str, Any] | None = Field(None, description="spec fields to change; dotted keys reach model_args")
    spec: dict[str, Any] | None = Field(None, description="a full spec instead of a preset")
    name: str | None = Field(None, max_length=200, pattern=r"^[^\x00]*$")
    priority: int = Field(0, ge=0, le=9, description="9 runs first")


Name = Annotated[str, StringConstraints(max_length=64, pattern=r"^[^\x00]*$")]


class JobQuery(BaseModel):
    """GET /jobs (and the jobs page) filters and page."""

    model_config = ConfigDict(extra="ignore")

    status: Literal[STATUSES] | None = None
    preset: Name | None = None
    model: Name | None = None
    dataset: Name | None = None
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=MAX_ID)


def _json_body() -> dict:
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # absurdly deep nesting
        body = None
    if not isinstance(body, dict):
        raise APIError(400, "body must be a JSON object (Content-Type: application/json)")
    return body


@bp.post("/jobs")
def create_job():
    body = JobCreate.model_validate(_json_body())
    with session() as s:
        job = jobs.create_job(s, **body.model_dump(), data_root=current_app.config["DATA_DIR"])
        s.commit()  # stored before it is enqueued: a worker never sees an id the database lacks
        out = jobs.job_dict(job)
    try:
        queue.enqueue(out["id"], out["queue"], out["priority"], current_app.config["BROKER_URL"])
    except Exception as exc:  # noqa: BLE001 - broker down: the job stays queued and a starting worker sends it
        log.warning("enqueue of job %s failed: %s", out["id"], exc)
        raise APIError(503, f"job {out['id']} is stored but the broker is unreachable; it will be dispatched "
                            f"when a worker starts", {"job": out})
    return out, 201, {"Location": url_for("jobs.get_job", job_id=out["id"])}


@bp.get("/jobs")
def list_jobs():
    q = JobQuery.model_validate(request.args.to_dict())
    with session() as s:
        items, total = jobs.list_jobs(s, **q.model_dump())
        page = [jobs.job_dict(j, full=False) for j in items]
    more = q.offset + len(page) < total
    nxt = url_for("jobs.list_jobs", **{**request.args.to_dict(), "offset": q.offset + q.limit}) if more else None
    return {"items": page, "total": total, "limit": q.limit, "offset": q.offset, "next": nxt}


@bp.get(JOB)
def get_job(job_id: int):
    with session() as s:
        return jobs.job_dict(jobs.get_job(s, job_id))


@bp.get(JOB + "/metrics")
def get_metrics(job_id: int):
    with session() as s:
        return jobs.metrics(s, job_id)


@bp.post(JOB + "/cancel")
def cancel_job(job_id: int):
    with session() as s:
        return jobs.job_dict(jobs.request_cancel(s, job_id)), 202


@bp.get(JOB + "/checkpoints")
def list_checkpoints(job_id: int):
    with session() as s:
        job = jobs.get_job(s, job_id)
        return {"items": [{"epoch": c.epoch, "sha256": c.sha256, "size_bytes": c.size_bytes,
                           "created_at": c.created_at.isoformat(),
                           "url": url_for("jobs.get_checkpoint", job_id=job_id, epoch=c.epoch)}
                          for c in job.checkpoints]}


@bp.get(JOB + f"/checkpoints/<int(max={MAX_ID}):epoch>")
def get_checkpoint(job_id: int, epoch: int):
    with session() as s:
        ckpt = jobs.get_checkpoint(s, job_id, epoch)
    path = Path(ckpt.path)
    if not path.is_file():
        raise APIError(410, f"checkpoint file for job {job_id} epoch {epoch} is no longer on disk")
    resp = send_file(path, mimetype="application/octet-stream", as_attachment=True,
                     download_name=f"job{job_id}-epoch{epoch:03d}.pt", etag=ckpt.sha256)
    resp.headers["X-Checkpoint-SHA256"] = ckpt.sha256
    return resp
