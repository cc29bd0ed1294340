"""The actions pages: the clone form, a job's spec as editable fields (or JSON), submitted as a new job by api/static/clone.js."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template

from api.db import session
from api.schemas.fields import MAX_ID
from shared.lab.specs import PRESETS, Spec, preset_spec
from shared.store.jobs import get_job

bp = Blueprint("actions", __name__)


def field_kind(schema: dict[str, Any]) -> tuple[str, list[str], bool]:
    """How a spec field is edited: (select | checkbox | number | text | json, the select's options, nullable)."""
    options = [s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"]
    nullable = len(options) < len(schema.get("anyOf", [schema]))
    only = options[0] if len(options) == 1 else {}
    if "enum" in only:
        return "select", only["enum"], nullable
    kind = {"boolean": "checkbox", "integer": "number", "number": "number", "string": "text"}.get(only.get("type"))
    return kind or "json", [], nullable


def clone_form(job_id: int) -> dict[str, Any]:
    """The form's fields, in the spec's order, with the job's values; the preset's spec to diff against."""
    with session() as s:
        job = get_job(s, job_id)
        name, preset, spec, priority = job.name, job.preset, dict(job.spec), job.priority
    props = Spec.model_json_schema()["properties"]
    fields = []
    for key, schema in props.items():
        kind, options, nullable = field_kind(schema)
        fields.append({"key": key, "kind": kind, "options": options, "nullable": nullable, "value": spec.get(key),
                       "help": schema.get("description", "")})
    base = preset_spec(preset).model_dump(mode="json") if preset in PRESETS else None
    return {"job_id": job_id, "name": f"{name or preset or 'job ' + str(job_id)} (clone)", "priority": priority,
            "preset": preset if base else None, "preset_spec": base, "spec": spec, "fields": fields}


@bp.get(f"/results/<int(max={MAX_ID}):job_id>/clone")
def clone(job_id: int):
    return render_template("clone.html", **clone_form(job_id))

