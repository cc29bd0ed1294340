"""Sweeps: POST /sweeps, a sweep with its cells, the list, cancel."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from api.schemas.fields import Time
from api.schemas.notify import NotifyOut
from shared.lab.specs import Spec
from shared.lab.stats import CellStats
from shared.lab.sweeps import SweepRequest
from shared.store.models import Sweep
from shared.store.sweeps import CellSummary


class SweepCreate(SweepRequest):
    """POST /sweeps body: a base (preset with overrides, or a full spec), a grid of values, and the seeds."""


class SweepSummary(BaseModel):
    """A sweep as listed: what it sweeps, and how many of its jobs are in each status."""

    id: int
    name: str | None
    preset: str | None
    grid: dict[str, list[Any]] | None = Field(description="the product grid; null when the cells are listed")
    listed_cells: list[dict[str, Any]] | None = Field(description="the cells as listed (POST /sweeps `cells`), or null")
    seeds: list[int]
    study: str | None
    study_version: int | None
    size: str | None = Field(description="a study's size (quick | full | smoke), null for a plain sweep")
    priority: int
    created_at: Time
    jobs: int = Field(description="cells x seeds")
    counts: dict[str, int] = Field(description="jobs per status")
    owner: str | None = Field(None, description="the name of the API token that made it (null: before tokens)")

    @classmethod
    def of(cls, sweep: Sweep, counts: dict[str, int]):
        data = {k: getattr(sweep, k) for k in ("id", "name", "preset", "seeds", "study", "study_version",
                                                "size", "priority", "created_at", "owner")}
        listed = isinstance(sweep.grid, list)
        data |= {"grid": None if listed else sweep.grid, "listed_cells": sweep.grid if listed else None}
        return cls.model_validate(data | {"jobs": sum(counts.values()), "counts": counts})


class CellOut(CellSummary):
    """A cell over its seeds: `n` succeeded runs; mean, std (ddof=1) and Student t ci95 of each metric."""

    test_accuracy: CellStats = Field(description="a fraction")
    test_loss: CellStats
    train_seconds: CellStats


class SweepOut(SweepSummary):
    """One sweep: its base spec and every cell with its statistics."""

    base: Spec
    cells: list[CellOut]
    notify: NotifyOut | None = Field(None, description="its webhook's delivery, if it named one (POSTed when "
                                     "every job has ended)")


class SweepList(BaseModel):
    items: list[SweepSummary]
    total: int


class SweepCancel(BaseModel):
    id: int
    cancelled: int = Field(description="queued jobs ended now")
    stopping: int = Field(description="running jobs asked to stop at their next step boundary")
    counts: dict[str, int]
