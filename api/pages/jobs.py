"""The jobs pages: the list, one job's results, comparisons; and their view models, from stored rows."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, render_template, request

from api.db import session
from api.http import BadRequest
from api.pages import compare
from api.schemas.fields import MAX_ID
from api.schemas.jobs import JobOut, JobSummary, Metrics, PageQuery, SystemOut, listed
from shared.lab.specs import PRESETS
from shared.store import fleet, jobs, listing, system
from shared.store.db import Session
from shared.store.models import Job, JobStatus, utcnow

bp = Blueprint("jobs", __name__)
PAGE_SIZE = 50
MAX_PARAM_COLUMNS = 5  # further differing fields share one cell, so the list needs no sideways scroll at 1280 px


@bp.get("/")
def index():
    """Jobs, newest first or sorted; `?partial=rows` returns only the table rows for the page's refresh."""
    q = PageQuery.model_validate({"limit": PAGE_SIZE} | {k: v for k, v in request.args.items() if v != ""})
    filters = q.model_dump(exclude={"partial"})
    with session() as s:
        items, total = jobs.list_jobs(s, **filters)
        table = list_table(items)
        active = listing.active_count(s)
        choices = listing.filter_choices(s)
    query = {k: v for k, v in filters.items() if v is not None and (k, v) not in (("limit", PAGE_SIZE), ("offset", 0))}
    page = dict(**table, total=total, active=active, query=query,
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


@bp.get("/compare", endpoint="compare")
def compare_page():
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


def list_table(items: list[Job]) -> dict[str, Any]:
    """The jobs table: rows, the differing columns (`columns` of their own, `more` sharing a cell) and what every
    listed job shares (`same`: preset, model, dataset)."""
    _, summaries = listed(items)
    shown, aparts = listing.page_columns([{"preset": j.preset, "spec": j.spec} for j in items])
    rows = []
    for j, item, apart in zip(items, summaries, aparts, strict=True):
        flat = listing.flat_spec(j.spec or {}) | {"preset": j.preset}
        rows.append(job_row(j, item) | {"values": {c: flat.get(c) for c in shown}, "apart": sorted(apart & {*shown})})
    same = {k: rows[0][k] for k in listing.JOB_FIELDS
            if rows and k not in shown and len({r[k] for r in rows}) == 1 and rows[0][k]}
    return {"rows": rows, "columns": shown[:MAX_PARAM_COLUMNS], "more": shown[MAX_PARAM_COLUMNS:], "same": same}


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
    """Why a queued job has not started (no worker with its GPUs or serving its queue, its place in it, a worker's
    admission); None otherwise."""
    job = jobs.get_job(s, job_id)
    if job.status != JobStatus.QUEUED:
        return None
    return fleet.explain_wait(s, job, broker_url, fleet.live_workers(broker_url))


def parse_ids(raw: str | None) -> list[int]:
    """`1,2,3` -> [1, 2, 3] (order kept, repeats dropped)."""
    parts = [p.strip() for p in (raw or "").split(",") if p.strip()]
    if not parts:
        raise BadRequest("pick the jobs to compare: /compare?ids=1,2,3")
    bad = [p for p in parts if not (p.isascii() and p.isdigit() and int(p) < 2**31)]
    if bad:
        raise BadRequest(f"job ids are whole numbers; got {', '.join(repr(b) for b in bad[:5])}")
    ids = list(dict.fromkeys(int(p) for p in parts))
    if len(ids) > compare.MAX_RUNS:
        raise BadRequest(f"compare at most {compare.MAX_RUNS} jobs at once, got {len(ids)}")
    return ids


def compare_view(s: Session, ids: list[int]) -> dict[str, Any]:
    """Runs grouped (by sweep cell, else by the recipe fields that differ), each group's accuracy and curves, the
    groups compared, one row per run, and the spec fields they share or not."""
    picked = jobs.get_jobs(s, ids)
    groups = compare.groups_of(picked)
    group_of = {i: g["index"] for g in groups for i in g["ids"]}
    series = [{"id": j.id, "group": group_of[j.id], **metrics(s, j.id), "batch_size": (j.spec or {}).get("batch_size"),
               "train_samples": (j.result.data or {}).get("train_samples") if j.result else None} for j in picked]
    runs = [job_full(j) | {"group": group_of[j.id], "seed": (j.spec or {}).get("seed")} for j in picked]
    return {"jobs": runs, "groups": groups, "pairs": compare.pairs_of(groups), "specs": compare.spec_summary(picked),
            "series": series}
