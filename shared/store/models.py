"""SQLAlchemy 2.0 typed models: jobs, their metrics, checkpoints and results, and the job status enum."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class JobStatus(StrEnum):
    """A job's life: queued -> running -> one of the finished states (the database checks the value)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in FINISHED


FINISHED = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})
ACTIVE = frozenset({JobStatus.QUEUED, JobStatus.RUNNING})
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC on every backend (SQLite stores and returns naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return value.astimezone(UTC) if value is not None and value.tzinfo else value

    def process_result_value(self, value, dialect):
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, datetime: UTCDateTime}


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(f"status IN {tuple(s.value for s in JobStatus)}", name="status"),
        Index("ix_jobs_status_created_at", "status", "created_at"),
        Index("ix_jobs_owner_status", "owner", "status"),  # the per-token cap counts a token's active jobs
        Index("ix_jobs_archived_created_at", "archived", "created_at"),  # the default list hides archived jobs
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    preset: Mapped[str | None] = mapped_column(String(64), index=True)
    model: Mapped[str] = mapped_column(String(32), index=True)
    dataset: Mapped[str] = mapped_column(String(64), index=True)
    spec: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED)  # a JobStatus value
    queue: Mapped[str] = mapped_column(String(16), default="cpu")
    priority: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]  # the running worker's lease: stale means the worker is gone
    dispatched_at: Mapped[datetime | None]  # last sent to the broker (see shared/store/dispatch.py)
    worker: Mapped[str | None] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(default=0)
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    error: Mapped[str | None] = mapped_column(Text)
    progress: Mapped[dict[str, Any] | None]  # phase, epoch, epochs, step, steps, fraction (0-1)
    sweep_id: Mapped[int | None] = mapped_column(ForeignKey("sweeps.id", ondelete="CASCADE"), index=True)
    cell_index: Mapped[int | None]  # the sweep cell (0-based): jobs of one cell differ only in their seed
    cell: Mapped[dict[str, Any] | None]  # the cell's swept values, keyed as in the grid ("model_args.n_feature")
    # The client's Idempotency-Key of POST /jobs: a retried POST finds this job instead of making a second one.
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    # What the submit-time rules told the submitter ([{field, message}]): shown again on the job's page.
    warnings: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    owner: Mapped[str | None] = mapped_column(String(100))  # the API token's name that submitted it; NULL: legacy
    # What people add (PATCH /jobs/<id>): labels to filter by, free text, and hidden from the default list.
    tags: Mapped[list[str]] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    notes: Mapped[str] = mapped_column(Text, default="", server_default=text("''"))
    archived: Mapped[bool] = mapped_column(default=False, server_default=false())

    epochs: Mapped[list["EpochMetric"]] = relationship(order_by="EpochMetric.epoch", cascade="all, delete-orphan",
                                                       passive_deletes=True)
    checkpoints: Mapped[list["Checkpoint"]] = relationship(order_by="Checkpoint.epoch", cascade="all, delete-orphan",
                                                           passive_deletes=True)
    result: Mapped["Result | None"] = relationship(cascade="all, delete-orphan", passive_deletes=True)
    attempt_log: Mapped[list["JobAttempt"]] = relationship(order_by="JobAttempt.attempt", cascade="all, delete-orphan",
                                                           passive_deletes=True)
    notify: Mapped["Notification | None"] = relationship(cascade="all, delete-orphan", passive_deletes=True)


class Sweep(Base):
    """A grid of specs times seeds, one job per cell and seed; a study's run is a sweep too."""

    __tablename__ = "sweeps"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    preset: Mapped[str | None] = mapped_column(String(64))
    base: Mapped[dict[str, Any]]  # the resolved base spec every cell starts from
    grid: Mapped[dict[str, Any]]  # swept field -> list of values, in the order given
    seeds: Mapped[list[int]] = mapped_column(JSON)  # the seeds every cell runs
    study: Mapped[str | None] = mapped_column(String(64), index=True)  # the study this sweep ran, if any
    study_version: Mapped[int | None]
    size: Mapped[str | None] = mapped_column(String(16))  # a study's size: quick | full
    priority: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    owner: Mapped[str | None] = mapped_column(String(100))  # as Job.owner

    jobs: Mapped[list["Job"]] = relationship(order_by="Job.id", passive_deletes=True)
    notify: Mapped["Notification | None"] = relationship(cascade="all, delete-orphan", passive_deletes=True)


class EpochMetric(Base):
    """One epoch of a job: the columns of shared.lab.results.EpochMetrics."""

    __tablename__ = "epoch_metrics"
    __table_args__ = (UniqueConstraint("job_id", "epoch"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    epoch: Mapped[int]
    train_loss: Mapped[float] = mapped_column(Float)
    test_loss: Mapped[float] = mapped_column(Float)
    test_accuracy: Mapped[float] = mapped_column(Float)  # fraction 0-1
    seconds: Mapped[float] = mapped_column(Float)  # wall time of the epoch, evaluation included
    train_seconds: Mapped[float] = mapped_column(Float)
    samples_per_second: Mapped[float] = mapped_column(Float)


class StepLoss(Base):
    """The training loss every `log_every` steps (mean over those steps)."""

    __tablename__ = "step_losses"
    __table_args__ = (UniqueConstraint("job_id", "epoch", "step"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    epoch: Mapped[int]
    step: Mapped[int]  # 1-based step within the epoch
    global_step: Mapped[int] = mapped_column(Integer)
    loss: Mapped[float] = mapped_column(Float)
    samples_seen: Mapped[int | None] = mapped_column(BigInteger)  # training samples so far; null on older rows


class EvalMetric(Base):
    """One evaluation point of a job: the columns of shared.lab.results.EvalPoint."""

    __tablename__ = "eval_metrics"
    __table_args__ = (UniqueConstraint("job_id", "samples_seen"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    samples_seen: Mapped[int] = mapped_column(BigInteger)
    epoch: Mapped[float] = mapped_column(Float)  # fractional epochs done: a resumed attempt drops those past its epoch
    step: Mapped[int] = mapped_column(BigInteger)
    test_loss: Mapped[float] = mapped_column(Float)
    test_accuracy: Mapped[float] = mapped_column(Float)  # fraction 0-1
    test_samples: Mapped[int]
    full: Mapped[bool]  # the whole test split (an epoch's end) or the fixed subset


class SystemMetric(Base):
    """One sample of a job's machine use: the columns of shared.lab.results.SystemSample."""

    __tablename__ = "system_metrics"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int]
    seconds: Mapped[float] = mapped_column(Float)  # since the attempt's trainer got the job
    cpu_percent: Mapped[float] = mapped_column(Float)  # of one core, summed over the trainer's processes
    rss_mb: Mapped[float] = mapped_column(Float)
    gpu_percent: Mapped[float | None] = mapped_column(Float)
    gpu_memory_mb: Mapped[float | None] = mapped_column(Float)
    load_1m: Mapped[float | None] = mapped_column(Float)  # the host's 1-minute load average
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Checkpoint(Base):
    __tablename__ = "checkpoints"
    __table_args__ = (UniqueConstraint("job_id", "epoch"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    epoch: Mapped[int]
    key: Mapped[str] = mapped_column(String(1024))  # in the artifact store (shared/store/artifacts/__init__.py), not a path
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Result(Base):
    __tablename__ = "results"

    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    test_accuracy: Mapped[float] = mapped_column(Float)
    test_loss: Mapped[float] = mapped_column(Float)
    params: Mapped[int]
    epochs: Mapped[int]
    train_seconds: Mapped[float] = mapped_column(Float)
    eval_seconds: Mapped[float | None] = mapped_column(Float)  # time spent evaluating, all epochs together
    samples_per_second: Mapped[float] = mapped_column(Float)
    data: Mapped[dict[str, Any]]  # name, source, fingerprint, sizes, normalization
    environment: Mapped[dict[str, Any]]  # torch, device, world size, backend, code commit
    details: Mapped[dict[str, Any]]  # confusion matrix, misclassified samples, page artifacts
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Token(Base):
    """An API token: only its sha256 is stored (tokens are random, so a fast hash is enough)."""

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)  # what jobs record as their owner
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    admin: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]  # updated at most once a minute


class JobAttempt(Base):
    """One attempt at a job: which worker took it, when, and the epoch it resumed after (0: from scratch)."""

    __tablename__ = "job_attempts"

    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    attempt: Mapped[int] = mapped_column(primary_key=True)  # 1-based, as jobs.attempts counts them
    worker: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    start_epoch: Mapped[int] = mapped_column(default=0)


class ArtifactChunk(Base):
    """One piece of an artifact in the database-backed store (CNNLAB_ARTIFACT_STORE=db://)."""

    __tablename__ = "artifact_chunks"

    key: Mapped[str] = mapped_column(String(512), primary_key=True)
    seq: Mapped[int] = mapped_column(primary_key=True)  # 0-based; an artifact is its chunks in order
    data: Mapped[bytes] = mapped_column(LargeBinary)


NOTIFY_STATUSES = ("waiting", "pending", "delivered", "failed")


class Notification(Base):
    """The webhook a job or a sweep (a study's run too) POSTs once when it ends, and how its delivery went.

    waiting: not ended yet; pending: ended, to be sent (again at `next_at`); delivered; failed: gave up."""

    __tablename__ = "notifications"
    __table_args__ = (
        CheckConstraint(f"status IN {NOTIFY_STATUSES}", name="status"),
        Index("ix_notifications_status_next_at", "status", "next_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), unique=True)
    sweep_id: Mapped[int | None] = mapped_column(ForeignKey("sweeps.id", ondelete="CASCADE"), unique=True)
    url: Mapped[str] = mapped_column(String(2000))
    status: Mapped[str] = mapped_column(String(16), default="waiting")
    attempts: Mapped[int] = mapped_column(default=0)
    last_code: Mapped[int | None]  # the receiver's HTTP status of the last attempt; None: no answer
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]  # when its job or sweep was seen ended
    next_at: Mapped[datetime | None]  # the next attempt is due then (backoff)
    claimed_until: Mapped[datetime | None]  # a sender holds it until then: one POST at a time
    delivered_at: Mapped[datetime | None]
