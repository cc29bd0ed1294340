"""The lab's report: running each recipe's missing seeds (the tables themselves are the report page, api/pages/report.py)."""

from __future__ import annotations

from flask import Blueprint, current_app

from api.auth import own
from api.db import session
from api.errors import APIError
from api.http import json_body
from api.schemas.report import ReportRun
from shared.store import sweeps
from shared.store.report import PRESETS, run_missing

bp = Blueprint("report", __name__)


@bp.post("/report/run")
def run_report():
    """One sweep per recipe that lacks seeds (succeeded, queued and running runs count); 201 with what was queued."""
    body = ReportRun.model_validate(json_body())
    unknown = [p for p in body.presets or [] if p not in PRESETS]
    if unknown:
        raise APIError(422, f"not a preset of the report: {', '.join(unknown)}; choose from "
                            f"{', '.join(PRESETS)}", [{"field": "presets", "message": f"unknown {unknown}"}])
    with session() as s:
        items = run_missing(s, body.seeds, body.presets or PRESETS, current_app.config["DATA_DIR"])
        own(s, sweep_ids=[i["sweep_id"] for i in items if i["sweep_id"] is not None])
        s.commit()  # stored before enqueued, as for POST /sweeps
        out = {"items": items, "jobs": sum(len(i["seeds"]) for i in items)}
        try:
            for item in items:
                if item["sweep_id"] is not None:
                    sweeps.dispatch(s, item["sweep_id"], current_app.config["BROKER_URL"])
        except Exception:  # noqa: BLE001 - broker down: the jobs stay queued; the dispatcher sends them
            raise APIError(503, "the runs are stored but the broker is unreachable; they will be dispatched once "
                                "it is back", out) from None
    return out, 201
