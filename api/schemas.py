"""The API's request and response models; `/openapi.json` is generated from them (api/openapi.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, StringConstraints

from shared.specs import Spec
from shared.stats import CellStats
from shared.store.models import Checkpoint, Job, JobStatus, StepLoss, Sweep, utcnow
from shared.store.report import MAX_REPORT_SEEDS
from shared.store.studies import MAX_STUDY_SEEDS, StudyAnswer
from shared.store.sweeps import CellSummary
from shared.study_types import LISTED_SIZES, Study
from shared.sweepgrid import SweepRequest
from shared.train.results import EpochMetrics, EvalPoint, RunSummary

MAX_ID = 2**31 - 1  # the id columns are 32-bit integers: larger ids match no route (404)
Name = Annotated[str, StringConstraints(max_length=64, pattern=r"^[^\x00]*$")]
# ISO 8601 with an explicit +00:00 offset, as the API has always written times.
Time = Annotated[datetime, PlainSerializer(lambda t: t.isoformat(), return_type=str, when_used="json")]


class JobCreate(BaseModel):
    """POST /jobs body: a preset with overrides, or a full spec."""

    model_config = ConfigDict(extra="forbid")

    preset: str | None = Field(None, description="a preset name, see GET /presets")
    overrides: dict[str, Any] | None = Field(None, description="spec fields to change; dotted keys reach model_args")
    spec: dict[str, Any] | None = Field(None, description="a full spec instead of a preset")
    name: str | None = Field(None, max_length=200, pattern=r"^[^\x00]*$")
    priority: int = Field(0, ge=0, le=9, description="9 runs first")


class JobQuery(BaseModel):
    """GET /jobs (and the jobs page) filters and page."""

    model_config = ConfigDict(extra="ignore")

    status: JobStatus | None = None
    preset: Name | None = None
    model: Name | None = None
    dataset: Name | None = None
    sweep_id: int | None = Field(None, ge=0, le=MAX_ID, description="only the jobs of this sweep")
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=MAX_ID)


class LogQuery(BaseModel):
    """GET /jobs/<id>/log."""

    model_config = ConfigDict(extra="forbid")

    follow: bool = Field(False, description="stream the log until the job ends (text/plain)")


class JobCsvQuery(JobQuery):
    """GET /jobs.csv: the list filters, with room for a whole export."""

    limit: int = Field(10_000, ge=1, le=10_000)


class Progress(BaseModel):
    """How far a job is: the phase, the epoch and step within it and within the run, the fraction done (0-1, below
    1 until its result is saved), the time since it started and an estimate of the time left."""

    model_config = ConfigDict(extra="allow")

    phase: Literal["loading", "training", "evaluating", "saving", "done"] | None = Field(
        None, description="loading data, training, evaluating (the whole test set at an epoch's end), saving "
        "(a checkpoint, or the result and its images), done")
    epoch: int | None = None
    epochs: int | None = None
    step: int | None = Field(None, description="steps done in the epoch")
    steps: int | None = Field(None, description="steps in the epoch")
    global_step: int | None = Field(None, description="steps done in the run")
    total_steps: int | None = Field(None, description="steps in the run")
    fraction: float | None = Field(None, ge=0, le=1)
    elapsed_seconds: float | None = Field(None, description="since the job first started; while it runs")
    eta_seconds: float | None = Field(None, description="estimated seconds left (this attempt's wall time per step, "
                                      "evaluations included); while it runs")

    @classmethod
    def of(cls, job: Job) -> "Progress | None":
        """The stored progress, with elapsed time and the ETA brought up to now for a running job."""
        if not job.progress:
            return None
        out = cls.model_validate(job.progress)
        if job.status != JobStatus.RUNNING:
            return out.model_copy(update={"eta_seconds": None})
        now, extra = utcnow(), out.model_extra or {}
        elapsed = (now - job.started_at).total_seconds() if job.started_at else None
        eta = out.eta_seconds
        if eta is not None and extra.get("reported_at"):  # the trainer's estimate, less the time since it was made
            eta = max(0.0, eta - (now - datetime.fromisoformat(extra["reported_at"])).total_seconds())
        return out.model_copy(update={"elapsed_seconds": elapsed, "eta_seconds": eta})


class JobSummary(BaseModel):
    """A job as listed: what it is, where it stands, and its accuracy once done."""

    id: int
    name: str | None
    status: JobStatus
    preset: str | None
    model: str
    dataset: str
    queue: str = Field(description="cpu or gpu")
    priority: int = Field(ge=0, le=9)
    progress: Progress | None
    created_at: Time
    started_at: Time | None
    finished_at: Time | None
    error: str | None
    test_accuracy: float | None = Field(None, description="a fraction, once the job succeeded")
    sweep_id: int | None = Field(None, description="the sweep that made the job, if any")
    cell_index: int | None = Field(None, description="its cell in the sweep (0-based, grid order)")
    cell: dict[str, Any] | None = Field(None, description="the cell's swept values, keyed as in the grid")

    @classmethod
    def of(cls, job: Job):
        """From the job's row (its result row loaded)."""
        out = cls.model_validate(job, from_attributes=True)
        return out.model_copy(update={"test_accuracy": job.result.test_accuracy if job.result else None,
                                      "progress": Progress.of(job)})


class JobOut(JobSummary):
    """One job in full: its spec, the worker running it, and its result."""

    spec: Spec
    worker: str | None = Field(description="host:pid of the worker process that runs (or ran) it")
    attempts: int
    heartbeat_at: Time | None
    cancel_requested: bool
    result: RunSummary | None


class JobList(BaseModel):
    items: list[JobSummary]
    total: int
    limit: int
    offset: int
    next: str | None = Field(description="the next page's URL, null on the last page")


class StepLossOut(BaseModel):
    """The mean training loss of the last `log_every` steps."""

    model_config = ConfigDict(from_attributes=True)

    epoch: int
    step: int = Field(description="1-based step within the epoch")
    global_step: int
    loss: float
    samples_seen: int | None = Field(None, description="training samples seen (null on runs recorded before it was)")


class Metrics(BaseModel):
    """A job's curves: per-epoch metrics, the training loss at a finer grain, and the test points within epochs."""

    epochs: list[EpochMetrics]
    steps: list[StepLossOut]
    evals: list[EvalPoint] = Field(description="test loss and accuracy by samples seen: on the fixed test subset "
                                   "within epochs (full false), on the whole test split at each epoch's end (full true)")

    @classmethod
    def of(cls, epochs: list, steps: list[StepLoss], points: list) -> "Metrics":
        return cls(epochs=[EpochMetrics.model_validate(m, from_attributes=True) for m in epochs],
                   steps=[StepLossOut.model_validate(s) for s in steps],
                   evals=[EvalPoint.model_validate(p, from_attributes=True) for p in points])


class CheckpointOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    epoch: int
    sha256: str
    size_bytes: int
    created_at: Time
    url: str

    @classmethod
    def of(cls, ckpt: Checkpoint, url: str) -> "CheckpointOut":
        return cls.model_validate({**{k: getattr(ckpt, k) for k in ("epoch", "sha256", "size_bytes",
                                                                     "created_at")}, "url": url})


class CheckpointList(BaseModel):
    items: list[CheckpointOut]


class Preset(BaseModel):
    name: str
    spec: Spec


class PresetList(BaseModel):
    items: list[Preset]


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: str = Field(description="'ok' or the error")
    broker: str = Field(description="'ok' or the error")


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

    @classmethod
    def of(cls, sweep: Sweep, counts: dict[str, int]):
        data = {k: getattr(sweep, k) for k in ("id", "name", "preset", "seeds", "study", "study_version",
                                                "size", "priority", "created_at")}
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


class SweepList(BaseModel):
    items: list[SweepSummary]
    total: int


class SweepCancel(BaseModel):
    id: int
    cancelled: int = Field(description="queued jobs ended now")
    stopping: int = Field(description="running jobs asked to stop at their next step boundary")
    counts: dict[str, int]


class ErrorBody(BaseModel):
    status: int
    message: str
    details: list[dict[str, Any]] | dict[str, Any] | None = None


class Error(BaseModel):
    """Every 4xx and 5xx answer has this shape."""

    error: ErrorBody


class StudySizeOut(BaseModel):
    """One size of a study: what it changes, what it cannot show, and its measured cost."""

    name: str
    overrides: dict[str, Any]
    note: str
    minutes_5_seeds: float | None = Field(description="measured estimate, 5 seeds on 2 CPU cores")
    reduced: bool = Field(description="trains less than the lab's recipe: its verdicts say so")


class StudySummary(BaseModel):
    """A study as listed (GET /studies)."""

    name: str
    version: int
    title: str
    question: str
    lab_question: str
    preset: str
    sizes: list[StudySizeOut]

    @classmethod
    def of(cls, study: Study):
        sizes = [StudySizeOut(name=n, overrides=study.base(n), note=study.sizes[n].note, reduced=study.reduced(n),
                              minutes_5_seeds=study.sizes[n].minutes_5_seeds) for n in LISTED_SIZES]
        return cls(name=study.name, version=study.version, title=study.title, question=study.question,
                   lab_question=study.lab_question, preset=study.preset, sizes=sizes)


class StudyList(BaseModel):
    items: list[StudySummary]


class StudyOut(StudySummary):
    """GET /studies/<name>: the study, its cells and claims, and the answer drawn from its runs at one size."""

    seed_answer: str
    cells: dict[str, dict[str, Any]] = Field(description="label -> the cell's values at the answer's size")
    claims: list[dict[str, Any]]
    answer: StudyAnswer


class StudyRun(BaseModel):
    """POST /studies/<name>/run body: seeds are fresh (after the seeds of earlier runs of this size and version)."""

    model_config = ConfigDict(extra="forbid")

    seeds: int = Field(5, ge=1, le=MAX_STUDY_SEEDS)
    size: str = Field("quick", description="quick | full")
    priority: int = Field(0, ge=0, le=9)


class ReportRun(BaseModel):
    """POST /report/run body: run each recipe's missing seeds, up to `seeds` per recipe."""

    model_config = ConfigDict(extra="forbid")

    seeds: int = Field(5, ge=1, le=MAX_REPORT_SEEDS)
    presets: list[str] | None = Field(None, description="some of the report's presets; null: all of them")
