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
    database: str = Field(description="'ok' or the error")
    broker: str = Field(description="'ok' or the error")
