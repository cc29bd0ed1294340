"""Jobs: submit, list, inspect, metrics and checkpoints (POST/GET /jobs and below)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from api.schemas.fields import MAX_ID, Name, Time
from api.schemas.notify import NotifyOut
from shared.lab.notify import NotifyRequest
from shared.lab.results import EpochMetrics, EvalPoint, ResultDetails, RunSummary, SystemSample, SystemSummary
from shared.lab.runs import Tag
from shared.lab.settings import settings
from shared.lab.specs import Spec, SpecWarning
from shared.store import listing
from shared.store.models import Checkpoint, Job, JobStatus, StepLoss, utcnow


class JobCreate(BaseModel):
    """POST /jobs body: a preset with overrides, or a full spec."""

    model_config = ConfigDict(extra="forbid")

    preset: str | None = Field(None, description="a preset name, see GET /presets")
    overrides: dict[str, Any] | None = Field(None, description="spec fields to change; dotted keys reach model_args")
    spec: dict[str, Any] | None = Field(None, description="a full spec instead of a preset")
    name: str | None = Field(None, max_length=200, pattern=r"^[^\x00]*$")
    priority: int = Field(0, ge=0, le=9, description="9 runs first")
    notify: NotifyRequest | None = Field(None, description="a webhook that gets one JSON POST when the job ends")


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
                             "default: newest first", json_schema_extra={"pattern": listing.SORT_PATTERN})
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
    notify: NotifyOut | None = Field(None, description="its webhook's delivery, if it named one")
    waiting: str | None = Field(None, description="while queued: why it has not started (its place, busy workers, "
                                "the running job it waits behind and when that one yields)")

    @field_validator("warnings", mode="before")
    @classmethod
    def _none_is_empty(cls, v):
        return v or []  # jobs stored before warnings were recorded


class JobListItem(JobSummary):
    """A listed job, with its values of the spec fields that differ among the listed jobs."""

    params: dict[str, Any] = Field(default_factory=dict, description="spec field -> value, for JobList.columns")
    normalization: dict[str, list[float]] | None = Field(
        None, description="where the spec's mean/std are null (the dataset's own): the values the run used, "
                          "{mean, std}, once its result recorded them")


def used_normalization(job: Job) -> dict[str, list[float]] | None:
    """The dataset's own mean/std a run used where its spec left them null (recorded in its result's data)."""
    data = (job.result.data or {}) if job.result is not None else {}
    if (job.spec or {}).get("mean") is not None or not data.get("mean") or not data.get("std"):
        return None
    return {"mean": data["mean"], "std": data["std"]}


def listed(items: list[Job]) -> tuple[list[str], list[JobListItem]]:
    """The spec fields that differ among `items`, and each job with its values of them (GET /jobs, the jobs page)."""
    columns = listing.differing([j.spec or {} for j in items])
    rows = []
    for j in items:
        flat = listing.flat_spec(j.spec or {})
        rows.append(JobListItem.of(j).model_copy(update={"params": {c: flat.get(c) for c in columns},
                                                         "normalization": used_normalization(j)}))
    return columns, rows


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


class SystemOut(BaseModel):
    """GET /jobs/<id>/system: the trainer's machine use as its supervisor sampled it, and the result's summary."""

    interval_seconds: float = Field(description="the time between two samples (their median spacing; with fewer "
                                    "than two, this server's CNNLAB_SYSTEM_SAMPLE_SECONDS)")
    samples: list[SystemSample] = Field(description="every attempt's samples, oldest first")
    summary: SystemSummary | None = Field(description="mean and peak, and the host's load when the job ended: "
                                          "once it succeeded")

    @classmethod
    def of(cls, samples: list[SystemSample], details: ResultDetails | None) -> "SystemOut":
        gaps = sorted(b.seconds - a.seconds for a, b in zip(samples, samples[1:], strict=False)
                      if b.seconds > a.seconds)
        interval = gaps[len(gaps) // 2] if gaps else settings().system_sample_seconds  # the worker's setting, not ours
        return cls(interval_seconds=round(interval, 2), samples=samples, summary=details.system if details else None)


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
