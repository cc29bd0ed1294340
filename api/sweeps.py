"""Sweeps: a grid of specs times seeds as jobs, their per-cell statistics, cancel, and CSV exports."""

from __future__ import annotations

import csv
import io
import json
import logging
from typing import Any

from flask import Blueprint, Response, current_app, request, url_for

from api.auth import own, require_manager
from api.db import session
from api.errors import APIError
from api.http import json_body, not_found, wants_html
from api.jobs import workers_check
from api.pages import sweeps as pages
from api.schemas.fields import MAX_ID
from api.schemas.jobs import JobCsvQuery
from api.schemas.notify import NotifyOut
from api.schemas.sweeps import SweepCancel, SweepCreate, SweepList, SweepOut, SweepSummary
from shared.lab.sweeps import SweepTooLarge, fields_of
from shared.store import jobs, sweeps
from shared.store.jobs import NotFound
from shared.store.models import Job

bp = Blueprint("sweeps", __name__)
SWEEP = f"/sweeps/<int(max={MAX_ID}):sweep_id>"
METRIC_COLUMNS = ("test_accuracy", "test_loss", "train_seconds")
log = logging.getLogger(__name__)


def sweep_out(s, sweep_id: int) -> dict[str, Any]:
    """GET /sweeps/<id>'s body: the sweep, its status counts and its cells (also the sweep page's data)."""
    sweep = sweeps.get_sweep(s, sweep_id)
    counts = sweeps.status_counts(s, [sweep_id])[sweep_id]
    summary = SweepSummary.of(sweep, counts).model_dump()
    cells = [c.model_dump() for c in sweeps.cell_summaries(s, sweep_id)]
    notify = NotifyOut.model_validate(sweep.notify).model_dump() if sweep.notify else None
    out = SweepOut.model_validate(summary | {"base": sweep.base, "cells": cells, "notify": notify})
    return out.model_dump(mode="json")


@bp.post("/sweeps")
def create_sweep():
    body = SweepCreate.model_validate(json_body())
    with session() as s:
        try:
            sweep = sweeps.create_sweep(s, body, data_root=current_app.config["DATA_DIR"], workers_check=workers_check)
        except SweepTooLarge as exc:
            raise APIError(422, f"sweep too large: {exc}", [{"field": "grid", "message": str(exc)}]) from None
        own(s, sweep_ids=[sweep.id])  # a sweep counts as its jobs against the cap
        out = commit_and_dispatch(s, sweep.id)
    return out, 201, {"Location": url_for("sweeps.get_sweep", sweep_id=out["id"])}


def commit_and_dispatch(s, sweep_id: int) -> dict[str, Any]:
    """Commit the new sweep, then enqueue its jobs; the sweep's body (503 with it if the broker is down)."""
    s.commit()  # stored before enqueued: a worker never sees an id the database lacks
    out = sweep_out(s, sweep_id)
    try:
        sweeps.dispatch(s, sweep_id, current_app.config["BROKER_URL"])
    except Exception as exc:  # noqa: BLE001 - broker down: the jobs stay queued; the dispatcher sends them
        log.warning("enqueue of sweep %s failed: %s", sweep_id, exc)
        raise APIError(503, f"sweep {sweep_id} is stored but the broker is unreachable; its jobs will be "
                            f"dispatched once the broker is back", {"sweep": out}) from None
    return out


@bp.get("/sweeps")
def list_sweeps():
    """The sweeps, newest first (the 200 newest); the sweeps page for a browser."""
    with session() as s:
        items, total = sweeps.list_sweeps(s, limit=200)
        counts = sweeps.status_counts(s, [w.id for w in items])
        page = SweepList(items=[SweepSummary.of(w, counts[w.id]) for w in items], total=total).model_dump(mode="json")
    if wants_html():
        return pages.list_page(page)
    return page


@bp.get(SWEEP)
def get_sweep(sweep_id: int):
    """The sweep with its cells' statistics; the sweep page (table, charts) for a browser."""
    with session() as s:
        out = sweep_out(s, sweep_id)
        if not wants_html():
            return out
        return pages.sweep_page(s, out)


bp.register_error_handler(NotFound, not_found)


@bp.post(SWEEP + "/cancel")
def cancel_sweep(sweep_id: int):
    with session() as s:
        require_manager(sweeps.get_sweep(s, sweep_id).owner, f"sweep {sweep_id}")
        done = sweeps.cancel_sweep(s, sweep_id)
        s.commit()
        counts = sweeps.status_counts(s, [sweep_id])[sweep_id]
    return SweepCancel(id=sweep_id, counts=counts, **done).model_dump(mode="json"), 202


def plain(value: Any) -> str:
    """A CSV cell: strings and numbers as they are, booleans and lists as JSON, nothing as empty."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value)
    return json.dumps(value, sort_keys=True)


def _metrics(job: Job) -> list[str]:
    return [plain(getattr(job.result, m) if job.result is not None else None) for m in METRIC_COLUMNS]


def _csv(header: list[str], rows: list[list[str]], filename: str) -> Response:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return Response(buf.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@bp.get(SWEEP + "/results.csv")
def results_csv(sweep_id: int):
    """One row per job: the swept fields (named as in the grid), seed, status, metrics (accuracy a fraction)."""
    with session() as s:
        fields = fields_of(sweeps.get_sweep(s, sweep_id).grid)  # listed cells: the union of their fields
        rows = [[plain((j.cell or {}).get(f)) for f in fields] + [plain(j.spec.get("seed")), j.status]
                + _metrics(j) + [str(j.id)] for j in sweeps.sweep_jobs(s, sweep_id)]
    header = [*fields, "seed", "status", *METRIC_COLUMNS, "job_id"]
    return _csv(header, rows, f"sweep{sweep_id}-results.csv")


JOB_COLUMNS = ("id", "name", "status", "preset", "model", "dataset", "sweep_id", "cell_index")


@bp.get("/jobs.csv")
def jobs_csv():
    """GET /jobs's filters (and sweep_id), newest first, up to 10,000 rows."""
    q = JobCsvQuery.model_validate(request.args.to_dict())
    with session() as s:
        items, _ = jobs.list_jobs(s, **q.model_dump())
        rows = [[plain(getattr(j, c)) for c in JOB_COLUMNS] + [plain((j.spec or {}).get("seed")), plain(j.cell)]
                + [plain(t.isoformat() if t else None) for t in (j.created_at, j.started_at, j.finished_at)]
                + _metrics(j) for j in items]
    header = [*JOB_COLUMNS, "seed", "cell", "created_at", "started_at", "finished_at", *METRIC_COLUMNS]
    return _csv(header, rows, "jobs.csv")
