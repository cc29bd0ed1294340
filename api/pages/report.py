"""The report page: the lab's tables over all runs of the lab's recipe (shared.store.report)."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from api.db import session
from shared.store import report

bp = Blueprint("report", __name__)
REPORT_PRESETS = {title: presets for title, presets, _, _ in report.TABLES}  # each table's run button


@bp.get("/report")
def handout_report():
    """The lab's tables over all runs of the lab's recipe; `?format=json` gives the same data."""
    with session() as s:
        data = report.report(s).model_dump(mode="json")
    if request.args.get("format") == "json":
        return data
    return render_template("report.html", report=data, presets=REPORT_PRESETS)
