"""Results pages (HTML): the jobs list, one job's results, comparisons and the lab's report."""

from __future__ import annotations

from flask import Blueprint, render_template, request
from pydantic import ValidationError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from api import session, views
from api.errors import RETRY_AFTER_SECONDS, json_error
from api.schemas import MAX_ID, JobQuery
from shared.specs import PRESETS
from shared.store import jobs
from shared.store.models import JobStatus
from shared.store.report import TABLES

bp = Blueprint("pages", __name__)
PAGE_SIZE = 50
REPORT_PRESETS = {title: presets for title, presets, _, _ in TABLES}  # each table's run button


@bp.get("/")
def index():
    """Jobs, newest first; `?partial=rows` returns only the table rows for the page's refresh."""
    q = JobQuery.model_validate({"limit": PAGE_SIZE} | {k: v for k, v in request.args.items() if v != ""})
    status, preset, offset, limit = q.status, q.preset, q.offset, q.limit
    with session() as s:
        items, total = jobs.list_jobs(s, status=status, preset=preset, sweep_id=q.sweep_id, tag=q.tag,
                                      archived=q.archived, limit=limit, offset=offset)
        rows = [views.job_row(j) for j in items]
        active = views.active_count(s)
    page = dict(rows=rows, total=total, offset=offset, limit=limit, status=status, preset=preset, active=active,
                sweep_id=q.sweep_id, tag=q.tag, archived=q.archived,
                statuses=[s.value for s in JobStatus], presets=list(PRESETS))
    if request.args.get("partial") == "rows":
        return render_template("_rows.html", **page), {"X-Active-Jobs": str(active)}
    return render_template("index.html", **page)


@bp.get(f"/results/<int(max={MAX_ID}):job_id>")
def result(job_id: int):
    with session() as s:
        view = views.job_view(s, job_id)
    return render_template("result.html", **view)


@bp.get("/compare")
def compare():
    ids = views.parse_ids(request.args.get("ids"))
    with session() as s:
        view = views.compare(s, ids)
    return render_template("compare.html", **view)


@bp.get("/report")
def seed_report():
    """The lab's tables over all runs of the lab's recipe; `?format=json` gives the same data."""
    with session() as s:
        data = views.seed_report(s)
    if request.args.get("format") == "json":
        return data
    return render_template("report.html", report=data, presets=REPORT_PRESETS)


def _error(status: int, message: str):
    """A friendly page for people, the API's JSON error for clients that ask for JSON."""
    if request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json":
        return json_error(status, message)
    return render_template("error.html", status=status, message=message), status


bp.register_error_handler(views.BadRequest, lambda e: _error(400, str(e)))
bp.register_error_handler(ValidationError, lambda e: _error(400, "; ".join(
    f"{'.'.join(map(str, d['loc']))}: {d['msg']}" for d in e.errors())))
bp.register_error_handler(jobs.NotFound, lambda e: _error(404, str(e)))
for unavailable in (OperationalError, InterfaceError, PoolTimeout):
    bp.register_error_handler(unavailable, lambda e: (*_error(503, "the database is unavailable; try again shortly"),
                                                      {"Retry-After": str(RETRY_AFTER_SECONDS)}))


@bp.app_template_filter("pct")
def pct(value: float | None, digits: int = 2) -> str:
    return f"{value * 100:.{digits}f}%" if isinstance(value, (int, float)) else "–"


@bp.app_template_filter("num")
def num(value, fmt: str = "{:,}") -> str:
    """A number formatted, or a dash where a result lacks it."""
    return fmt.format(value) if isinstance(value, (int, float)) else "–"


@bp.app_template_filter("seconds")
def seconds(value: float | None) -> str:
    """1h 02m, 3m 07s, 4.2s."""
    if not isinstance(value, (int, float)):
        return "–"
    if value < 60:
        return f"{value:.1f}s"
    m, s = divmod(int(value), 60)
    return f"{m}m {s:02d}s" if m < 60 else f"{m // 60}h {m % 60:02d}m"


@bp.app_template_filter("when")
def when(iso: str | None) -> str:
    """An ISO timestamp as `YYYY-MM-DD HH:MM` (UTC)."""
    return iso[:16].replace("T", " ") if iso else "–"
