"""Studies: the catalog, one study with the answer drawn from its runs, running one; and the report's missing seeds.

GET /studies and GET /studies/<name> answer the HTML pages when a browser asks (as the sweeps' routes do).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, render_template, request, url_for

from api import auth, session
from api.errors import APIError, json_error
from api.jobs import _json_body
from api.schemas import ReportRun, StudyList, StudyOut, StudyRun, StudySummary
from api.sweeps import commit_and_dispatch, wants_html
from api.sweepviews import metric_chart
from shared.lab.studies import LISTED_SIZES, STUDIES, Size, Study, get_study
from shared.store import studies as store
from shared.store import sweeps
from shared.store.jobs import NotFound
from shared.store.report import PRESETS as REPORT_PRESETS
from shared.store.report import run_missing

bp = Blueprint("studies", __name__)
SIZES: tuple[Size, ...] = (*LISTED_SIZES, "smoke")  # smoke: the hidden test-only size, accepted but never listed


def _study(name: str) -> Study:
    try:
        return get_study(name)
    except KeyError as exc:
        raise NotFound(exc.args[0]) from None


def _size(raw: str | None) -> Size:
    size = raw or "quick"
    if size not in SIZES:
        raise APIError(422, f"unknown size {size!r}; choose {' or '.join(LISTED_SIZES)}",
                       [{"field": "size", "message": f"unknown size {size!r}"}])
    return size


def study_out(s, study: Study, size: Size) -> dict[str, Any]:
    """GET /studies/<name>'s body: the study, and the answer from its runs of `size` and this version."""
    summary = StudySummary.of(study).model_dump()
    fields = {"text", "a", "b", "metric", "expect", "margin", "margin_why", "seeds_hint"}
    claims = [c.model_dump(include=fields) for c in study.claims]
    out = StudyOut.model_validate(summary | {"lab_answer": study.lab_answer, "cells": study.cell_values(size),
                                             "claims": claims, "answer": store.answer(s, study, size)})
    return out.model_dump(mode="json")


@bp.get("/studies")
def list_studies():
    page = StudyList(items=[StudySummary.of(st) for st in STUDIES.values()]).model_dump(mode="json")
    if wants_html():
        return render_template("studies.html", **page)
    return page


@bp.get("/studies/<string(maxlength=64):name>")
def get_study_route(name: str):
    """The study and its answer at `?size=` (quick by default); the study page for a browser."""
    study = _study(name)
    size = _size(request.args.get("size"))
    with session() as s:
        out = study_out(s, study, size)
    if not wants_html():
        return out
    return render_template("study.html", study=out, size=size, sizes=LISTED_SIZES, chart=study_chart(out),
                           max_seeds=store.MAX_STUDY_SEEDS)


def study_chart(out: dict[str, Any]) -> dict[str, Any]:
    """Test accuracy per cell (categories) with its 95% interval: the sweep page's chart."""
    cells = out["answer"]["cells"]
    chart = metric_chart({"cell": [c["label"] for c in cells]}, cells)
    return chart | {"x": "cell"}


@bp.post("/studies/<string(maxlength=64):name>/run")
def run_study(name: str):
    """Create the study's sweep at a size with fresh seeds; 201 with the sweep, `id` at the top level."""
    study = _study(name)
    body = StudyRun.model_validate(_json_body())
    size = _size(body.size)
    with session() as s:
        sweep = store.run_study(s, study, size, body.seeds, body.priority, current_app.config["DATA_DIR"])
        auth.own(s, sweep_ids=[sweep.id])
        out = commit_and_dispatch(s, sweep.id)
    return out, 201, {"Location": url_for("sweeps.get_sweep", sweep_id=out["id"])}


@bp.errorhandler(NotFound)
def _not_found(exc):
    if wants_html():
        return render_template("error.html", status=404, message=str(exc)), 404
    return json_error(404, str(exc))


@bp.post("/report/run")
def run_report():
    """One sweep per recipe that lacks seeds (succeeded, queued and running runs count); 201 with what was queued."""
    body = ReportRun.model_validate(_json_body())
    unknown = [p for p in body.presets or [] if p not in REPORT_PRESETS]
    if unknown:
        raise APIError(422, f"not a preset of the report: {', '.join(unknown)}; choose from "
                            f"{', '.join(REPORT_PRESETS)}", [{"field": "presets", "message": f"unknown {unknown}"}])
    with session() as s:
        items = run_missing(s, body.seeds, body.presets or REPORT_PRESETS, current_app.config["DATA_DIR"])
        auth.own(s, sweep_ids=[i["sweep_id"] for i in items if i["sweep_id"] is not None])
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
