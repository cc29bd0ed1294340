"""The handout: every question of the lab with both answers (GET /handout?format=json), and its run button."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from shared.store.handout import Handout, PlanItem

__all__ = ["Handout", "HandoutRun", "HandoutRunOut"]


class HandoutRun(BaseModel):
    """POST /handout/run body: every quick study the plan gives seeds (an empty object runs them all)."""

    model_config = ConfigDict(extra="forbid")

    priority: int = Field(0, ge=0, le=9)


class HandoutRunOut(BaseModel):
    """What the button queued: the plan it followed, one sweep per study given seeds."""

    plan: list[PlanItem]
    sweep_ids: list[int]
    jobs: int = Field(description="jobs queued in all")
