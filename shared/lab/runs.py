"""What people add to jobs: tags, and runs trained outside the service (`cnnlab train --server`, `POST /runs`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator

from shared.lab.results import INT32, EpochMetrics, Misclassified, RunSummary
from shared.lab.specs import Spec

MAX_TAGS = 32  # a job's labels, not a document: the jobs list shows them all
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64,
                                       pattern=r"^[^,\x00]+$")]  # no commas: the page edits tags as a comma list


def _distinct(tags: list[str]) -> list[str]:
    return list(dict.fromkeys(tags))


Tags = Annotated[list[Tag], Field(max_length=MAX_TAGS), AfterValidator(_distinct)]
LOCAL_QUEUE = "local"  # a recorded run's `queue`: it never went through a queue or a worker


class StepPoint(BaseModel):
    """The mean training loss of the last `log_every` steps."""

    epoch: int = Field(ge=1, le=INT32)
    step: int = Field(ge=1, le=INT32, description="1-based step within the epoch")
    global_step: int = Field(ge=1, le=INT32)
    loss: float


class LocalRun(BaseModel):
    """A finished local run: its spec, what it measured per epoch and step, and its result."""

    model_config = ConfigDict(extra="forbid")

    preset: str | None = Field(None, max_length=64)
    name: str | None = Field(None, max_length=200, pattern=r"^[^\x00]*$")
    tags: Tags = []
    spec: Spec
    host: str = Field(max_length=200, description="where it ran (recorded as the job's worker)")
    started_at: datetime
    finished_at: datetime
    result: RunSummary
    epochs: list[EpochMetrics] = Field(max_length=10_000)
    steps: list[StepPoint] = Field([], max_length=100_000)
    confusion: list[list[int]] = Field([], description="K x K counts, [true class][predicted class]")
    misclassified: list[Misclassified] = Field([], max_length=256)

    @field_validator("finished_at")
    @classmethod
    def _after_start(cls, v: datetime, info: ValidationInfo) -> datetime:
        start = info.data.get("started_at")
        if start is not None and _comparable(v) < _comparable(start):
            raise ValueError("finished_at is before started_at")
        return v

    @field_validator("epochs")
    @classmethod
    def _epochs_once(cls, v: list[EpochMetrics]) -> list[EpochMetrics]:
        numbers = [m.epoch for m in v]
        if any(n < 1 for n in numbers):
            raise ValueError("epoch numbers start at 1")
        if len(set(numbers)) != len(numbers):
            raise ValueError("an epoch number is repeated (each epoch is recorded once)")
        return v

    @field_validator("steps")
    @classmethod
    def _steps_once(cls, v: list[StepPoint]) -> list[StepPoint]:
        if len({(p.epoch, p.step) for p in v}) != len(v):
            raise ValueError("an (epoch, step) pair is repeated")
        return v


def _comparable(t: datetime) -> datetime:
    """A time without an offset is read as UTC, so times with and without one compare (no TypeError, no 500)."""
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)
