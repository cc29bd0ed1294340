"""A notification's delivery as GET /jobs/<id> and GET /sweeps/<id> show it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.fields import Time


class NotifyOut(BaseModel):
    """The webhook that gets one JSON POST when the job or sweep ends, and how its delivery went."""

    model_config = ConfigDict(from_attributes=True)

    url: str
    status: Literal["waiting", "pending", "delivered", "failed"] = Field(
        description="waiting: not ended yet; pending: to be sent (again at next_at); delivered (a 2xx); failed: "
        "gave up after CNNLAB_NOTIFY_ATTEMPTS attempts")
    attempts: int
    last_code: int | None = Field(description="the receiver's HTTP status at the last attempt; null: no answer")
    last_error: str | None
    ended_at: Time | None
    next_at: Time | None = Field(description="when the next attempt is due (backoff)")
    delivered_at: Time | None
