"""Studies: the catalog, one study with the answer drawn from its runs, running one.

GET /studies and GET /studies/<name> answer the HTML pages when a browser asks (as the sweeps' routes do).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, request, url_for

from api.auth import own
from api.db import session
from api.errors import APIError
from api.http import json_body, not_found, wants_html
from api.jobs import workers_check
from api.pages import studies as pages
from api.schemas.studies import StudyList, StudyOut, StudyRun, StudySummary
from api.sweeps import commit_and_dispatch
from shared.lab.studies import LISTED_SIZES, STUDIES, Size, Study, get_study
from shared.store import studies as store
from shared.store.jobs import NotFound

bp = Blueprint("studies", __name__)
SIZES: tuple[Size, ...] = (*LISTED_SIZES, "smoke")  # smoke: the hidden test-only size, accepted but never listed


def _study(name: str) -> Study:
    try:
        return get_study(name)
    except KeyError as exc:
        raise NotFound(exc.args[0]) from None


def size_arg(raw: str | None) -> Size:
    size = "quick" if raw is None else raw  # `?size=` (empty) is no size of the enum: a 422, not quick
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
        return pages.list_page(page)
    return page


@bp.get("/studies/<string(maxlength=64):name>")
def get_study_route(name: str):
    """The study and its answer at `?size=` (quick by default); the study page for a browser."""
    study = _study(name)
    size = size_arg(request.args.get("size"))
    with session() as s:
        out = study_out(s, study, size)
    if not wants_html():
        return out
    return pages.study_page(out, size, max_seeds=store.MAX_STUDY_SEEDS)


@bp.post("/studies/<string(maxlength=64):name>/run")
def run_study(name: str):
    """Create the study's sweep at a size with fresh seeds; 201 with the sweep, `id` at the top level."""
    study = _study(name)
    body = StudyRun.model_validate(json_body())
    size = size_arg(body.size)
    with session() as s:
        sweep = store.run_study(s, study, size, body.seeds, body.priority, current_app.config["DATA_DIR"],
                                body.model_dump()["notify"], workers_check=workers_check)
        own(s, sweep_ids=[sweep.id])
        out = commit_and_dispatch(s, sweep.id)
    return out, 201, {"Location": url_for("sweeps.get_sweep", sweep_id=out["id"])}


bp.register_error_handler(NotFound, not_found)
