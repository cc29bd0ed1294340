"""The jobs pages: the list, one job's results, comparisons; and their view models, from stored rows."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, current_app, render_template, request

from api.db import session
from api.http import BadRequest
from api.pages.sweeps import cell_groups
from api.schemas.fields import MAX_ID
from api.schemas.jobs import JobOut, JobSummary, Metrics, PageQuery, SystemOut, listed
from shared.lab.specs import PRESETS
from shared.store import fleet, jobs, listing, system
from shared.store.db import Session
from shared.store.models import Job, JobStatus, utcnow

bp = Blueprint("jobs", __name__)
PAGE_SIZE = 50
MAX_COMPARE = 12


@bp.get("/")
def index():
    """Jobs, newest first or sorted; `?partial=rows` returns only the table rows for the page's refresh."""
    q = PageQuery.model_validate({"limit": PAGE_SIZE} | {k: v for k, v in request.args.items() if v != ""})
    filters = q.model_dump(exclude={"partial"})
    with session() as s:
        items, total = jobs.list_jobs(s, **filters)
        columns, summaries = listed(items)
        rows = [job_row(j, item) for j, item in zip(items, summaries, strict=True)]
        active = listing.active_count(s)
        choices = listing.filter_choices(s)
    query = {k: v for k, v in filters.items() if v is not None and (k, v) not in (("limit", PAGE_SIZE), ("offset", 0))}
    page = dict(rows=rows, columns=columns, total=total, active=active, query=query,
                statuses=[s.value for s in JobStatus], presets=list(PRESETS), **choices, **filters)
    if q.partial == "rows":
        return render_template("_table.html", **page), {"X-Active-Jobs": str(active)}
    return render_template("index.html", **page)


@bp.get(f"/results/<int(max={MAX_ID}):job_id>")
def result(job_id: int):
    with session() as s:
        view = job_view(s, job_id)
        view["waiting"] = waiting_reason(s, job_id, current_app.config["BROKER_URL"])
    return render_template("result.html", **view)


@bp.get("/compare")
def compare():
    ids = parse_ids(request.args.get("ids"))
    with session() as s:
        view = compare_view(s, ids)
    return render_template("compare.html", **view)


def duration(job: Job) -> float | None:
    """Seconds from start to finish, or to now while running."""
    if job.started_at is None:
        return None
    end = job.finished_at or (utcnow() if job.status == JobStatus.RUNNING else None)
    return (end - job.started_at).total_seconds() if end else None


def job_row(job: Job, item: JobSummary | None = None) -> dict[str, Any]:
    return (item or JobSummary.of(job)).model_dump(mode="json") | {"duration": duration(job)}


def job_full(job: Job) -> dict[str, Any]:
    return JobOut.of(job).model_dump(mode="json") | {"duration": duration(job)}


def metrics(s: Session, job_id: int) -> dict[str, Any]:
    return Metrics.of(*jobs.metrics(s, job_id)).model_dump(mode="json")


def per_class(confusion: list[list[int]], classes: list[str]) -> list[dict[str, Any]]:
    """Test accuracy of each true class, from the confusion matrix rows."""
    out = []
    for i, row in enumerate(confusion):
        total = sum(row)
        out.append({"class": classes[i] if i < len(classes) else str(i), "correct": row[i], "total": total,
                    "accuracy": row[i] / total if total else None})
    return out


def job_view(s: Session, job_id: int) -> dict[str, Any]:
    """Everything the results page of one job shows."""
    job = jobs.get_job(s, job_id)
    view = {"job": job_full(job), "metrics": metrics(s, job_id),
            "checkpoints": [{"epoch": c.epoch, "sha256": c.sha256, "size_bytes": c.size_bytes}
                            for c in job.checkpoints],
            "details": {}, "artifacts": None, "per_class": None, "classes": None}
    details = jobs.result_details(job)
    view["system"] = SystemOut.of(system.samples(s, job_id), details).model_dump(mode="json")
    if job.result is not None:
        classes = (job.result.data or {}).get("classes") or []
        view |= {"details": details, "artifacts": details.artifacts, "classes": classes}
        if details.confusion:
            view["per_class"] = per_class(details.confusion, classes)
    return view


def waiting_reason(s: Session, job_id: int, broker_url: str) -> str | None:
    """Why a queued job has not started (no worker serves its queue, or its place in it); None otherwise."""
    job = jobs.get_job(s, job_id)
    if job.status != JobStatus.QUEUED:
        return None
    return fleet.why_waiting(s, job, fleet.live_workers(broker_url))


def parse_ids(raw: str | None) -> list[int]:
    """`1,2,3` -> [1, 2, 3] (order kept, repeats dropped)."""
    parts = [p.strip() for p in (raw or "").split(",") if p.strip()]
    if not parts:
        raise BadRequest("pick the jobs to compare: /compare?ids=1,2,3")
    bad = [p for p in parts if not (p.isascii() and p.isdigit() and int(p) < 2**31)]
    if bad:
        raise BadRequest(f"job ids are whole numbers; got {', '.join(repr(b) for b in bad[:5])}")
    ids = list(dict.fromkeys(int(p) for p in parts))
    if len(ids) > MAX_COMPARE:
        raise BadRequest(f"compare at most {MAX_COMPARE} jobs at once, got {len(ids)}")
    return ids


def _show(value: Any) -> str:
    """Spec values as JSON (false, null, {"n_feature": 6}), strings bare."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def compare_view(s: Session, ids: list[int]) -> dict[str, Any]:
    """Jobs side by side: spec rows flagged where they differ, results, and curves to overlay."""
    picked = jobs.get_jobs(s, ids)
    fields = list(dict.fromkeys(k for j in picked for k in (j.spec or {})))
    spec_rows = []
    for field in ["preset", *fields]:
        values = [j.preset if field == "preset" else (j.spec or {}).get(field) for j in picked]
        spec_rows.append({"field": field, "values": [_show(v) for v in values],
                          "differs": len({_show(v) for v in values}) > 1})
    series = [{"id": j.id, "label": f"#{j.id} {j.name or j.preset or j.model}", **metrics(s, j.id),
               "batch_size": (j.spec or {}).get("batch_size"),
               "train_samples": (j.result.data or {}).get("train_samples") if j.result else None} for j in picked]
    return {"jobs": [job_full(j) for j in picked], "spec_rows": spec_rows,
            "series": series, "grouping": cell_groups(picked)}
