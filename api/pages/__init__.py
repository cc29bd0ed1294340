"""The HTML pages, one module per area (the JSON blueprint's word): its view models and the templates it renders.

A page with a URL of its own (the jobs list, a job's results, compare, the report, the clone form) is a route of
its area's blueprint, nested under `pages` (endpoint `pages.<area>.<view>`); their error pages are answered here,
once. A URL that serves JSON and a page alike (/sweeps, /studies, /queue) stays the JSON blueprint's, which hands a
browser's request to its area's page function.
"""

from __future__ import annotations

from flask import Blueprint
from pydantic import ValidationError

from api.errors import RETRY_AFTER_SECONDS
from api.http import BadRequest, error_page
from api.pages import actions, jobs, report
from api.pages.filters import FILTERS
from shared.store.db import UNAVAILABLE
from shared.store.jobs import NotFound

bp = Blueprint("pages", __name__)
for child in (jobs, report, actions):
    bp.register_blueprint(child.bp)
for name, f in FILTERS.items():
    bp.add_app_template_filter(f, name)


def _invalid(exc: ValidationError):
    return error_page(400, "; ".join(f"{'.'.join(map(str, d['loc']))}: {d['msg']}" for d in exc.errors()))


def _unavailable(exc: Exception):
    return *error_page(503, "the database is unavailable; try again shortly"), {"Retry-After": str(RETRY_AFTER_SECONDS)}


bp.register_error_handler(BadRequest, lambda e: error_page(400, str(e)))
bp.register_error_handler(ValidationError, _invalid)
bp.register_error_handler(NotFound, lambda e: error_page(404, str(e)))
for unavailable in UNAVAILABLE:
    bp.register_error_handler(unavailable, _unavailable)
