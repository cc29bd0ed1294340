"""The API's request and response models; `/openapi.json` is generated from them (api/openapi.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, StringConstraints, field_validator, model_validator

from shared.lab.results import EpochMetrics, EvalPoint, RunSummary
from shared.lab.runs import MAX_TAGS, LocalRun, Tag, Tags
from shared.lab.specs import Spec, SpecWarning
from shared.lab.stats import CellStats
from shared.lab.studies import LISTED_SIZES, Study
from shared.lab.sweeps import SweepRequest
from shared.store import listing
from shared.store.models import Checkpoint, Job, JobStatus, StepLoss, Sweep, utcnow
from shared.store.report import MAX_REPORT_SEEDS
from shared.store.studies import MAX_STUDY_SEEDS, StudyAnswer
from shared.store.sweeps import CellSummary

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
    """GET /jobs (and the jobs page) filters, search, order and page; any other parameter is a 422 naming it."""

    model_config = ConfigDict(extra="forbid")

    status: JobStatus | None = None
    preset: Name | None = None
    model: Name | None = None
    dataset: Name | None = None
    sweep_id: int | None = Field(None, ge=0, le=MAX_ID, description="only the jobs of this sweep")
    q: Annotated[str, StringConstraints(max_length=200, pattern=r"^[^\x00]*$")] | None = Field(
        None, description="jobs whose name contains this text (case-insensitive)")
    sort: str | None = Field(None, max_length=80, description="a column (" + ", ".join(listing.FIXED) + "), a spec "
                             "field (lr, batch_size, ...) or model_args.<name>; '-' first for descending; "
                             "default: newest first")
    tag: Tag | None = Field(None, description="only the jobs with this tag")
    archived: bool = Field(False, description="false: jobs not archived (the default list); true: only archived ones")
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=MAX_ID)

    @field_validator("sort")
    @classmethod
    def _known_sort(cls, v: str | None) -> str | None:
        return v if v is None else listing.check_sort(v)


class PageQuery(JobQuery):
    """The jobs page: the list's parameters, and `partial=rows` for the page's own refresh."""

    partial: Literal["rows"] | None = None


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
    queue: str = Field(description="cpu or gpu; local: a run recorded by POST /runs (`cnnlab train --server`)")
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
    owner: str | None = Field(None, description="the name of the API token that submitted it (null: before tokens)")
    tags: list[str] = Field([], description="labels set with PATCH; GET /jobs?tag=x filters by one")
    archived: bool = Field(False, description="hidden from the default list (GET /jobs?archived=true lists them)")

    @classmethod
    def of(cls, job: Job):
        """From the job's row (its result row loaded)."""
        out = cls.model_validate(job, from_attributes=True)
        return out.model_copy(update={"test_accuracy": job.result.test_accuracy if job.result else None,
                                      "progress": Progress.of(job)})


class AttemptOut(BaseModel):
    """One attempt at a job: the worker that took it, when, and the epoch it resumed after (0: from scratch)."""

    model_config = ConfigDict(from_attributes=True)

    attempt: int = Field(description="1-based")
    worker: str = Field(description="host:pid of the worker process that took it")
    started_at: Time
    start_epoch: int = Field(description="the checkpoint's epoch it resumed after; 0 for a fresh start")


class JobOut(JobSummary):
    """One job in full: its spec, the worker running it, and its result."""

    spec: Spec
    worker: str | None = Field(description="host:pid of the worker process that runs (or ran) it")
    attempts: int
    attempt_log: list[AttemptOut] = Field(description="every attempt, oldest first: who took the job, and where "
                                                      "it resumed (from the artifact store, on any machine)")
    heartbeat_at: Time | None
    cancel_requested: bool
    notes: str = Field("", description="free text set with PATCH")
    result: RunSummary | None
    warnings: list[SpecWarning] = Field(default_factory=list, description="what the submit-time rules said: "
                                        "defaults taken, normalization replaced, no worker for the queue")

    @field_validator("warnings", mode="before")
    @classmethod
    def _none_is_empty(cls, v):
        return v or []  # jobs stored before warnings were recorded


class JobListItem(JobSummary):
    """A listed job, with its values of the spec fields that differ among the listed jobs."""

    params: dict[str, Any] = Field(default_factory=dict, description="spec field -> value, for JobList.columns")


class JobPatch(BaseModel):
    """PATCH /jobs/<id> body: the fields to change; any others are refused."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=200, pattern=r"^[^\x00]*$", description="null clears it")
    tags: Tags | None = Field(None, description=f"replaces the tags: at most {MAX_TAGS}, each 1-64 characters, "
                                                "no commas; surrounding blanks and repeats are dropped")
    notes: str | None = Field(None, max_length=20_000, pattern=r"^[^\x00]*$")
    archived: bool | None = Field(None, description="true hides the job from the default list")

    @model_validator(mode="after")
    def _something(self) -> "JobPatch":
        if not self.model_fields_set:
            raise ValueError(f"nothing to change: give one of {', '.join(type(self).model_fields)}")
        for field in ("tags", "notes", "archived"):
            if field in self.model_fields_set and getattr(self, field) is None:
                raise ValueError(f"{field} cannot be null")
        return self


class RunCreate(LocalRun):
    """POST /runs body: a finished run trained outside the service, recorded as a succeeded job (queue `local`)."""


class JobList(BaseModel):
    columns: list[str] = Field(description="the spec fields whose values differ among the listed jobs")
    items: list[JobListItem]
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
    database: Literal["ok", "down", "locked"] = Field(description="'locked': SQLite's write lock is held (writes 503)")
    broker: Literal["ok", "down"]
    errors: dict[str, str] | None = Field(None, description="each failing dependency's error: only for a request "
                                                             "with a valid token (they name hosts)")


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

    lab_answer: str
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


class QueueOverview(BaseModel):
    """GET /queue?format=json: the queues, their depth, the live workers and the waiting jobs in order."""

    workers_known: bool = Field(description="false when the workers could not be asked (the lists are then empty)")
    queues: list[QueueState]
    workers: list[QueueWorker]
    waiting: list[WaitingJob]
