"""What people add to jobs: tags, and runs trained outside the service (`cnnlab train --server`, `POST /runs`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from shared.lab.results import EpochMetrics, Misclassified, RunSummary
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

    epoch: int = Field(ge=1)
    step: int = Field(ge=1, description="1-based step within the epoch")
    global_step: int = Field(ge=1)
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

    @model_validator(mode="after")
    def _in_order(self) -> "LocalRun":
        if self.finished_at < self.started_at:
            raise ValueError("finished_at is before started_at")
        numbers = [m.epoch for m in self.epochs]
        if any(n < 1 for n in numbers):
            raise ValueError("epochs: epoch numbers start at 1")
        if len(set(numbers)) != len(numbers):
            raise ValueError("epochs: an epoch number is repeated (each epoch is recorded once)")
        if len({(p.epoch, p.step) for p in self.steps}) != len(self.steps):
            raise ValueError("steps: an (epoch, step) pair is repeated")
        return self
