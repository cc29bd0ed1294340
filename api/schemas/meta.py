"""Presets and health."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from shared.lab.specs import Spec


class Preset(BaseModel):
    name: str
    spec: Spec


class PresetList(BaseModel):
    items: list[Preset]


class ModelOut(BaseModel):
    """A net of the catalog: a built-in one, or one of a package CNNLAB_MODEL_PACKAGES allows."""

    name: str
    convolutional: bool = Field(description="has a convolutional trunk (`features`): the pages draw its filters")
    min_size: int = Field(description="smallest input height/width in pixels")
    summary: str
    arg_defaults: dict[str, Any] = Field(description="its model_args and their defaults")
    package: str | None = Field(description="the installed package that provides it; null: built in")


class ModelList(BaseModel):
    items: list[ModelOut]


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: Literal["ok", "down", "locked"] = Field(description="'locked': SQLite's write lock is held (writes 503)")
    broker: Literal["ok", "down"]
    errors: dict[str, str] | None = Field(None, description="each failing dependency's error: only for a request "
                                                             "with a valid token (they name hosts)")
