"""The lab's report: running the recipes' missing seeds."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from shared.store.report import MAX_REPORT_SEEDS


class ReportRun(BaseModel):
    """POST /report/run body: run each recipe's missing seeds, up to `seeds` per recipe."""

    model_config = ConfigDict(extra="forbid")

    seeds: int = Field(5, ge=1, le=MAX_REPORT_SEEDS)
    presets: list[str] | None = Field(None, description="some of the report's presets; null: all of them")
