"""The one error shape of every 4xx and 5xx answer."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorBody(BaseModel):
    status: int
    message: str
    details: list[dict[str, Any]] | dict[str, Any] | None = None


class Error(BaseModel):
    """Every 4xx and 5xx answer has this shape."""

    error: ErrorBody
