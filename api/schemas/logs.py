"""GET /jobs/<id>/log's parameters."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class LogQuery(BaseModel):
    """GET /jobs/<id>/log."""

    model_config = ConfigDict(extra="forbid")

    follow: bool = Field(False, description="stream the log until the job ends (text/plain)")
