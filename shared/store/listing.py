"""The jobs list's columns, sort order and filter menus: fixed columns, any spec field, the spec fields that tell jobs
apart, and the models and datasets in use."""

from __future__ import annotations

import functools
import json
import re
from typing import Any

from sqlalchemy import Float, case, cast, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from shared.lab.specs import Spec, SpecError, preset_spec
from shared.store.models import ACTIVE, Job, Result

# The list's own columns; anything else sortable is a spec field (`lr`, `model_args.n_feature`).
FIXED = ("id", "name", "status", "preset", "model", "dataset", "queue", "priority", "created_at", "started_at",
         "finished_at", "test_accuracy", "duration")
SPEC_FIELDS = tuple(f for f in Spec.model_fields if f not in ("model", "dataset", "model_args"))
MODEL_ARG = re.compile(r"model_args\.[A-Za-z_][A-Za-z0-9_]{0,63}")
# check_sort's grammar as one JSON-schema pattern, so the OpenAPI document promises only the sorts that work.
SORT_PATTERN = "^-?(" + "|".join(map(re.escape, FIXED + SPEC_FIELDS)) + "|" + MODEL_ARG.pattern + ")$"
ALWAYS_SHOWN = {"model", "dataset"}  # the list's own columns: never repeated as a spec column
JOB_FIELDS = ("preset", "model", "dataset")  # columns of the job itself; the page shows them only where they differ


def check_sort(value: str) -> str:
    """`field` or `-field` (descending) over a known column; ValueError naming the choices otherwise."""
    key = value.removeprefix("-")
    if key in FIXED or key in SPEC_FIELDS or MODEL_ARG.fullmatch(key):
        return value
    raise ValueError(f"cannot sort by {value!r}; choose one of {', '.join(FIXED)}, a spec field "
                     f"({', '.join(SPEC_FIELDS[:6])}, ...) or model_args.<name>; prefix '-' for descending")


def _duration(dialect: str) -> ColumnElement:
    if dialect == "sqlite":
        return func.julianday(Job.finished_at) - func.julianday(Job.started_at)
    return func.extract("epoch", Job.finished_at - Job.started_at)


def _spec_keys(dialect: str, path: list[str]) -> list[ColumnElement]:
    """A spec value ordered as its JSON type: numbers by value, text by text (PostgreSQL's json has no order)."""
    if dialect == "sqlite":  # json_extract returns SQL numbers and text, which SQLite orders by type then value
        return [func.json_extract(Job.spec, "$." + ".".join(path))]
    node = Job.spec[tuple(path)] if len(path) > 1 else Job.spec[path[0]]
    text = node.as_string()
    number = case((func.json_typeof(node) == "number", cast(text, Float)))
    flag = case((func.json_typeof(node) == "boolean", text))
    return [number, flag, text]


def order_by(sort: str | None, dialect: str) -> list[ColumnElement]:
    """ORDER BY clauses for `sort` (`field` / `-field`), then newest first; missing values go last."""
    newest = [Job.created_at.desc(), Job.id.desc()]
    if not sort:
        return newest
    key, desc = sort.removeprefix("-"), sort.startswith("-")
    if key == "test_accuracy":
        keys = [select(Result.test_accuracy).where(Result.job_id == Job.id).scalar_subquery()]
    elif key == "duration":
        keys = [_duration(dialect)]
    elif key in FIXED:
        keys = [getattr(Job, key)]
    else:
        keys = _spec_keys(dialect, key.split("."))
    return [(k.desc() if desc else k.asc()).nulls_last() for k in keys] + newest


def flat_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """A stored spec with model_args spread out as `model_args.<name>` keys."""
    out = {k: v for k, v in spec.items() if k != "model_args"}
    out |= {f"model_args.{k}": v for k, v in (spec.get("model_args") or {}).items()}
    return out


def differing(specs: list[dict[str, Any]]) -> list[str]:
    """The spec fields whose values are not all the same across `specs` (model args included), in spec order."""
    flats = [flat_spec(s) for s in specs]
    keys = list(dict.fromkeys(k for f in flats for k in f))
    return [k for k in keys if k not in ALWAYS_SHOWN
            and len({json.dumps(f.get(k), sort_keys=True) for f in flats}) > 1]


@functools.cache
def _preset_values(preset: str) -> dict[str, Any]:
    """A preset's flat spec (its model and dataset included); {} for a name no longer a preset."""
    try:
        return flat_spec(preset_spec(preset).model_dump())
    except SpecError:
        return {}


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON: 1 is not true, 1 and 1.0 are one number (cheaper than comparing json.dumps for scalars)."""
    if isinstance(a, (list, dict)) or isinstance(b, (list, dict)):
        return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def departures(preset: str | None, spec: dict[str, Any]) -> set[str]:
    """The flat spec fields where a job departs from its preset (all of them for a job without one), and `preset`."""
    flat = flat_spec(spec or {})
    own = _preset_values(preset) if preset else {}
    if not own:
        return {"preset", *flat}
    return {"preset"} | {k for k in {*flat, *own} if not _same(flat.get(k), own.get(k))}


def page_columns(jobs: list[dict[str, Any]]) -> tuple[list[str], list[set[str]]]:
    """The jobs page's columns: `preset` and the spec fields (model and dataset too) that differ among `jobs` (each
    {"preset", "spec"}) where some job departs from its preset, the most departed first; a preset's own values stay
    out. With them, each job's departures."""
    flats = [flat_spec(j.get("spec") or {}) | {"preset": j.get("preset")} for j in jobs]
    apart = [departures(j.get("preset"), j.get("spec") or {}) for j in jobs]
    count: dict[str, int] = {}
    for a in apart:
        for k in a:
            count[k] = count.get(k, 0) + 1
    keys = [k for k in dict.fromkeys(k for f in flats for k in f) if count.get(k)]  # spec order
    differ = [k for k in keys if any(not _same(f.get(k), flats[0].get(k)) for f in flats[1:])]
    return sorted(differ, key=lambda k: (k != "preset", -count[k])), apart


def filter_choices(session: Session) -> dict[str, list[str]]:
    """The models and datasets the jobs use, for the list's filter menus."""
    return {"models": list(session.scalars(select(Job.model).distinct().order_by(Job.model))),
            "datasets": list(session.scalars(select(Job.dataset).distinct().order_by(Job.dataset)))}


def active_count(session: Session) -> int:
    """Jobs queued or running (the jobs page refreshes itself while there are any)."""
    return session.scalar(select(func.count()).select_from(Job).where(Job.status.in_(ACTIVE)))
