"""Results pages (HTML): the jobs list and one job's results."""

from __future__ import annotations

from flask import Blueprint, render_template

from api.db import session
from shared import jobs

bp = Blueprint("pages", __name__)


@bp.get("/")
def index():
    return render_template("index.html")


@bp.get("/results/<int:job_id>")
def result(job_id: int):
    with session() as s:
        job = jobs.job_dict(jobs.get_job(s, job_id))
    return render_template("result.html", job=job)
