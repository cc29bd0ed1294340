"""Presets, health and the OpenAPI document."""

from __future__ import annotations

from flask import Blueprint, current_app

from api.db import session
from api.openapi import document
from api.schemas.meta import Health, Preset, PresetList
from shared.lab.specs import PRESETS, preset_spec
from shared.store.db import ping

bp = Blueprint("meta", __name__)


@bp.get("/presets")
def presets():
    return PresetList(items=[Preset(name=n, spec=preset_spec(n)) for n in PRESETS]).model_dump(mode="json")


@bp.get("/healthz")
def healthz():
    checks = {"database": _check(_database), "broker": _check(_broker)}
    ok = all(v == "ok" for v in checks.values())
    return Health(status="ok" if ok else "degraded", **checks).model_dump(mode="json"), 200 if ok else 503


@bp.get("/openapi.json")
def openapi():
    return document()


def _check(probe) -> str:
    try:
        probe()
        return "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means unhealthy, reported as text
        return f"error: {exc}"


def _database() -> None:
    with session() as s:
        ping(s)


def _broker() -> None:
    url = current_app.config["BROKER_URL"]
    if url.startswith("redis"):
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping()
    elif not url.startswith("filesystem"):
        raise RuntimeError(f"cannot probe broker {url.split('://')[0]}")
