"""The queue: queues, their depth, the live workers and the waiting jobs."""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.schemas.fields import Time


class QueueWorker(BaseModel):
    """A live worker: its Celery node name, the queues it consumes and the jobs it runs now."""

    name: str
    queues: list[str]
    running: list[int] = Field(description="ids of the jobs it runs")


class QueueState(BaseModel):
    name: str
    depth: int = Field(description="jobs waiting in this queue")
    workers: list[str] = Field(description="the live workers that consume it")


class WaitingJob(BaseModel):
    """A queued job, in the order the workers take them (priority 9 first, then oldest first)."""

    id: int
    name: str | None
    queue: str
    priority: int
    position: int = Field(description="1-based place in its queue")
    preset: str | None
    model: str
    dataset: str
    created_at: Time
    reason: str | None = Field(None, description="why it waits: its place, busy workers, the running job it waits "
                               "behind and when that one yields (for the first REASONS of each queue)")


class QueueOverview(BaseModel):
    """GET /queue?format=json: the queues, their depth, the live workers and the waiting jobs in order."""

    workers_known: bool = Field(description="false when the workers could not be asked (the lists are then empty)")
    queues: list[QueueState]
    workers: list[QueueWorker]
    waiting: list[WaitingJob]
