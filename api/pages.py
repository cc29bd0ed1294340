"""Results pages (HTML): the jobs list, one job's results, comparisons and the lab's report."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request
from pydantic import ValidationError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from api import session, views
from api.errors import RETRY_AFTER_SECONDS, json_error
from api.schemas import MAX_ID, PageQuery
from shared.lab.specs import PRESETS
from shared.store import jobs
from shared.store.models import JobStatus
from shared.store.report import TABLES

bp = Blueprint("pages", __name__)
PAGE_SIZE = 50
REPORT_PRESETS = {title: presets for title, presets, _, _ in TABLES}  # each table's run button


@bp.get("/")
def index():
    """Jobs, newest first or sorted; `?partial=rows` returns only the table rows for the page's refresh."""
    q = PageQuery.model_validate({"limit": PAGE_SIZE} | {k: v for k, v in request.args.items() if v != ""})
    filters = q.model_dump(exclude={"partial"})
    with session() as s:
        items, total = jobs.list_jobs(s, **filters)
        columns, listed = views.listed(items)
        rows = [views.job_row(j, item) for j, item in zip(items, listed, strict=True)]
        active = views.active_count(s)
        choices = views.filter_choices(s)
    query = {k: v for k, v in filters.items() if v is not None and (k, v) not in (("limit", PAGE_SIZE), ("offset", 0))}
    page = dict(rows=rows, columns=columns, total=total, active=active, query=query,
                statuses=[s.value for s in JobStatus], presets=list(PRESETS), **choices, **filters)
    if q.partial == "rows":
        return render_template("_table.html", **page), {"X-Active-Jobs": str(active)}
    return render_template("index.html", **page)


@bp.get(f"/results/<int(max={MAX_ID}):job_id>")
def result(job_id: int):
    with session() as s:
        view = views.job_view(s, job_id)
        view["waiting"] = views.waiting_reason(s, job_id, current_app.config["BROKER_URL"])
    return render_template("result.html", **view)


@bp.get("/compare")
def compare():
    ids = views.parse_ids(request.args.get("ids"))
    with session() as s:
        view = views.compare(s, ids)
    return render_template("compare.html", **view)


@bp.get("/report")
def handout_report():
    """The lab's tables over all runs of the lab's recipe; `?format=json` gives the same data."""
    with session() as s:
        data = views.handout_report(s)
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


@bp.app_template_filter("size")
def size(n: int | None) -> str:
    """Bytes in binary units at three significant digits: 106 MiB, 4.52 KiB, 980 B."""
    if not isinstance(n, (int, float)):
        return "–"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" or n >= 100 else f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} GiB"


@bp.app_template_filter("sig")
def sig(values, digits: int = 4) -> str:
    """Numbers (one or a list) at `digits` significant digits: 0.1307, 0.3081 rather than 16 digits."""
    if isinstance(values, (int, float)):
        return f"{values:.{digits}g}"
    return ", ".join(f"{v:.{digits}g}" for v in values or [])


@bp.app_template_filter("device")
def device(text: str | None) -> str | None:
    """'cuda: NVIDIA H200' as is; 'cpu: cpu' (no processor name known) as 'cpu'."""
    kind, _, name = (text or "").partition(": ")
    return kind if name in ("", kind) else text
