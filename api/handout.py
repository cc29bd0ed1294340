"""The handout: GET /handout (the page; ?format=json the same as JSON, ?format=file one HTML file to hand out) and
POST /handout/run, the page's 'run every quick study' button."""

from __future__ import annotations

from flask import Blueprint, current_app, request

from api.auth import own
from api.db import session
from api.errors import APIError
from api.http import json_body
from api.jobs import workers_check
from api.pages import handout as pages
from api.schemas.handout import HandoutRun, HandoutRunOut
from api.studies import size_arg
from shared.store import sweeps
from shared.store.handout import handout, run_quick

bp = Blueprint("handout", __name__)
FORMATS = ("html", "json", "file")


@bp.get("/handout")
def get_handout():
    """Every question of the lab in its order, the lab's answer beside the data's, at `?size=` (quick)."""
    fmt = request.args.get("format", "html")
    if fmt not in FORMATS:
        raise APIError(422, f"unknown format {fmt!r}; choose {', '.join(FORMATS)}",
                       [{"field": "format", "message": f"unknown format {fmt!r}"}])
    size = size_arg(request.args.get("size"))
    with session() as s:
        data = handout(s, size).model_dump(mode="json")
    if fmt == "json":
        return data
    return pages.handout_page(data, file=fmt == "file")


@bp.post("/handout/run")
def run_handout():
    """Run every quick study its plan gives seeds: one sweep each; 201 with the plan and the sweeps."""
    body = HandoutRun.model_validate(json_body())
    with session() as s:
        plan, runs = run_quick(s, body.priority, current_app.config["DATA_DIR"], workers_check=workers_check)
        ids = [r.id for r in runs]
        own(s, sweep_ids=ids)
        s.commit()  # stored before enqueued, as for POST /sweeps
        out = HandoutRunOut(plan=plan, sweep_ids=ids, jobs=sum(p.jobs for p in plan)).model_dump(mode="json")
        try:
            for sweep_id in ids:
                sweeps.dispatch(s, sweep_id, current_app.config["BROKER_URL"])
        except Exception:  # noqa: BLE001 - broker down: the jobs stay queued; the dispatcher sends them
            raise APIError(503, "the runs are stored but the broker is unreachable; they will be dispatched once "
                                "it is back", out) from None
    return out, 201
