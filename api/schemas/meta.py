"""Presets and health."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from shared.lab.specs import Spec


class Preset(BaseModel):
    name: str
    spec: Spec


class PresetList(BaseModel):
    items: list[Preset]


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: Literal["ok", "down", "locked"] = Field(description="'locked': SQLite's write lock is held (writes 503)")
    broker: Literal["ok", "down"]
    errors: dict[str, str] | None = Field(None, description="each failing dependency's error: only for a request "
                                                             "with a valid token (they name hosts)")
