"""View models of the results pages: job rows, one job's view, comparisons and the lab's tables, from stored rows."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from api.schemas import JobListItem, JobOut, JobSummary, Metrics
from api.sweepviews import cell_groups
from shared.store import fleet, jobs, listing, report
from shared.store.jobs import NotFound, get_job
from shared.store.models import ACTIVE, Job, JobStatus, utcnow

MAX_COMPARE = 12


class BadRequest(ValueError):
    """A request the pages cannot answer (bad ids, filters); the message is shown to the user."""


def duration(job: Job) -> float | None:
    """Seconds from start to finish, or to now while running."""
    if job.started_at is None:
        return None
    end = job.finished_at or (utcnow() if job.status == JobStatus.RUNNING else None)
    return (end - job.started_at).total_seconds() if end else None


def job_row(job: Job, item: JobSummary | None = None) -> dict[str, Any]:
    return (item or JobSummary.of(job)).model_dump(mode="json") | {"duration": duration(job)}


def listed(items: list[Job]) -> tuple[list[str], list[JobListItem]]:
    """The spec fields that differ among `items`, and each job with its values of them."""
    columns = listing.differing([j.spec or {} for j in items])
    rows = []
    for j in items:
        flat = listing.flat_spec(j.spec or {})
        rows.append(JobListItem.of(j).model_copy(update={"params": {c: flat.get(c) for c in columns}}))
    return columns, rows


def job_full(job: Job) -> dict[str, Any]:
    return JobOut.of(job).model_dump(mode="json") | {"duration": duration(job)}


def metrics(session: Session, job_id: int) -> dict[str, Any]:
    return Metrics.of(*jobs.metrics(session, job_id)).model_dump(mode="json")


def filter_choices(session: Session) -> dict[str, list[str]]:
    """The models and datasets the jobs use, for the list's filter menus."""
    return {"models": list(session.scalars(select(Job.model).distinct().order_by(Job.model))),
            "datasets": list(session.scalars(select(Job.dataset).distinct().order_by(Job.dataset)))}


def active_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Job).where(Job.status.in_(ACTIVE)))


def per_class(confusion: list[list[int]], classes: list[str]) -> list[dict[str, Any]]:
    """Test accuracy of each true class, from the confusion matrix rows."""
    out = []
    for i, row in enumerate(confusion):
        total = sum(row)
        out.append({"class": classes[i] if i < len(classes) else str(i), "correct": row[i], "total": total,
                    "accuracy": row[i] / total if total else None})
    return out


def job_view(session: Session, job_id: int) -> dict[str, Any]:
    """Everything the results page of one job shows."""
    job = get_job(session, job_id)
    view = {"job": job_full(job), "metrics": metrics(session, job_id),
            "checkpoints": [{"epoch": c.epoch, "sha256": c.sha256, "size_bytes": c.size_bytes}
                            for c in job.checkpoints],
            "details": {}, "artifacts": None, "per_class": None, "classes": None}
    if job.result is not None:
        details = jobs.result_details(job)
        classes = (job.result.data or {}).get("classes") or []
        view |= {"details": details, "artifacts": details.artifacts, "classes": classes}
        if details.confusion:
            view["per_class"] = per_class(details.confusion, classes)
    return view


def waiting_reason(session: Session, job_id: int, broker_url: str) -> str | None:
    """Why a queued job has not started (no worker serves its queue, or its place in it); None otherwise."""
    job = get_job(session, job_id)
    if job.status != JobStatus.QUEUED:
        return None
    return fleet.why_waiting(session, job, fleet.live_workers(broker_url))


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


def compare(session: Session, ids: list[int]) -> dict[str, Any]:
    """Jobs side by side: spec rows flagged where they differ, results, and curves to overlay."""
    found = {j.id: j for j in session.scalars(select(Job).where(Job.id.in_(ids)).options(selectinload(Job.result)))}
    missing = [i for i in ids if i not in found]
    if missing:
        raise NotFound(f"no job {', '.join(map(str, missing))}")
    picked = [found[i] for i in ids]
    fields = list(dict.fromkeys(k for j in picked for k in (j.spec or {})))
    spec_rows = []
    for field in ["preset", *fields]:
        values = [j.preset if field == "preset" else (j.spec or {}).get(field) for j in picked]
        spec_rows.append({"field": field, "values": [_show(v) for v in values],
                          "differs": len({_show(v) for v in values}) > 1})
    series = [{"id": j.id, "label": f"#{j.id} {j.name or j.preset or j.model}", **metrics(session, j.id),
               "batch_size": (j.spec or {}).get("batch_size"),
               "train_samples": (j.result.data or {}).get("train_samples") if j.result else None} for j in picked]
    return {"jobs": [job_full(j) for j in picked], "spec_rows": spec_rows,
            "series": series, "grouping": cell_groups(picked)}


def handout_report(session: Session) -> dict[str, Any]:
    """The lab's tables over every run of each preset's recipe (shared.store.report), as JSON-ready data."""
    return report.report(session).model_dump(mode="json")
