"""Presets, health and the OpenAPI document."""

from __future__ import annotations

from flask import Blueprint, current_app, g

from api.openapi import document
from api.pages.openapi import docs_page
from api.schemas.meta import Health, ModelList, ModelOut, Preset, PresetList
from shared.lab.models import catalog
from shared.lab.specs import PRESETS, preset_spec
from shared.store.health import probe_broker, probe_database

bp = Blueprint("meta", __name__)


@bp.get("/presets")
def presets():
    return PresetList(items=[Preset(name=n, spec=preset_spec(n)) for n in PRESETS]).model_dump(mode="json")


@bp.get("/models")
def models():
    """The catalog: the built-in nets and those of the allowed packages (docs/models.md)."""
    known = catalog()
    items = [ModelOut(name=f.name, convolutional=f.convolutional, min_size=f.min_size, summary=f.summary,
                      arg_defaults=dict(f.arg_defaults), package=f.package) for f in map(known.get, sorted(known))]
    return ModelList(items=items).model_dump(mode="json")


@bp.get("/healthz")
def healthz():
    """`ok`/`down`/`locked` per dependency; the errors (they name hosts) only for a request with a valid token."""
    probes = {"database": probe_database(current_app.config["DATABASE_URL"]),
              "broker": probe_broker(current_app.config["BROKER_URL"])}
    ok = all(p.state == "ok" for p in probes.values())
    errors = {k: p.error for k, p in probes.items() if p.error} if g.get("caller") is not None else None
    health = Health(status="ok" if ok else "degraded", errors=errors or None, **{k: p.state for k, p in probes.items()})
    return health.model_dump(mode="json", exclude_none=True), 200 if ok else 503


@bp.get("/api")
def api_docs():
    """The API docs page: the OpenAPI document rendered (offline, no script)."""
    return docs_page()


@bp.get("/openapi.json")
def openapi():
    return document()
