"""What a run reports, as typed values: the run's facts, per-epoch metrics, and the fit's result.

One definition each: the engine fills them, the worker stores them, the API answers with them (its
OpenAPI document is generated from these models), and the CLI prints them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.lab.specs import Spec

INT32 = 2**31 - 1  # the largest value of the database's INTEGER columns (PostgreSQL's are 32-bit)


class DataInfo(BaseModel):
    """Which data a run saw: provenance, sizes and the normalization it used."""

    model_config = ConfigDict(extra="allow")  # older results carry a few more keys

    name: str | None = None
    source: str | None = None
    fingerprint: str | None = Field(None, description="sha256 over the dataset's files")
    train_samples: int | None = None
    test_samples: int | None = None
    classes: list[str] = Field(default_factory=list)
    mean: list[float] | None = None
    std: list[float] | None = None
    permutation: dict | None = Field(None, description="the pixel permutation's seed and first indices")


class Environment(BaseModel):
    """Where a run trained: library versions, device, ranks and the code's commit."""

    model_config = ConfigDict(extra="allow")

    torch: str | None = None
    device: str | None = Field(None, description="'cpu: x86_64' or 'cuda: <GPU name>'")
    world_size: int = 1
    devices: list[str] = Field(default_factory=list, description="each rank's device@host")
    backend: str | None = None
    threads: int | None = None
    python: str | None = None
    host: str | None = None
    commit: str | None = None


class EpochMetrics(BaseModel):
    """One epoch: losses are means over samples; accuracy is a fraction; times in seconds."""

    epoch: int = Field(le=INT32)
    train_loss: float
    test_loss: float
    test_accuracy: float
    seconds: float = Field(description="wall time of the epoch, evaluation included")
    train_seconds: float
    samples_per_second: float


class EvalPoint(BaseModel):
    """One evaluation during a run: on the fixed test subset within an epoch, or on the full test set at its end."""

    samples_seen: int = Field(description="training samples seen before it (all ranks, all epochs)")
    epoch: float = Field(description="epochs done when it was made: 0.25 is a quarter of the first epoch")
    step: int = Field(description="optimizer steps done (all epochs)")
    test_loss: float
    test_accuracy: float = Field(description="a fraction")
    test_samples: int = Field(description="test images it was made on")
    full: bool = Field(description="true: the whole test split (epoch end); false: the fixed subset")


class RunInfo(BaseModel):
    """Told to the reporter when training starts."""

    spec: Spec
    params: int
    data: DataInfo
    environment: Environment
    steps_per_epoch: int
    start_epoch: int = Field(description="epochs already done (a resumed run), 0 for a fresh one")
    epochs: int | None = Field(None, description="epochs the run trains in all: spec.epochs, or as many as "
                               "spec.steps takes (the last one cut short)")
    total_steps: int | None = Field(None, description="optimizer steps the run takes in all")
    train_samples: int | None = Field(None, description="training samples one epoch holds")
    eval_every: int = Field(0, description="training samples between evaluations within epochs (0: none)")
    eval_subset: int | None = Field(None, description="test images each evaluation within an epoch is made on")


class Misclassified(BaseModel):
    index: int = Field(description="position in the test split")
    label: int
    predicted: int


class RunSummary(BaseModel):
    """The headline of a finished run, as stored with its job."""

    test_accuracy: float = Field(description="fraction of the test split classified right")
    test_loss: float
    params: int = Field(ge=0, le=INT32)
    epochs: int = Field(ge=0, le=INT32)
    train_seconds: float
    eval_seconds: float | None = Field(None, description="time spent evaluating (absent on older results)")
    samples_per_second: float
    data: DataInfo
    environment: Environment


class TTAResult(BaseModel):
    """Test-time augmentation of a run's final evaluation (spec `tta`), with the plain evaluation beside it."""

    level: int = Field(description="1: mirror; 2: mirror + 1-pixel translations")
    views: int = Field(description="views evaluated per test image")
    accuracy: float = Field(description="a fraction: the run's test_accuracy")
    loss: float
    plain_accuracy: float = Field(description="a fraction: the same weights on the plain test images")
    plain_loss: float
    seconds: float = Field(description="time of the TTA evaluation (part of eval_seconds)")


class FitResult(RunSummary):
    """Everything `fit` returns on rank 0."""

    tta: TTAResult | None = None

    spec: Spec
    history: list[EpochMetrics]
    confusion: list[list[int]] = Field(description="K x K counts, [true class][predicted class]")
    misclassified: list[Misclassified]


class PackInfo(BaseModel):
    """The pack a job trained in with its sweep cell mates (shared.train.packs): its jobs, start and end."""

    jobs: list[int]
    started_at: str = Field(description="ISO 8601, UTC")
    finished_at: str = Field(description="ISO 8601, UTC")
    train_seconds: float | None = Field(None, description="the pack's training time, shared by its members")


class SystemSample(BaseModel):
    """The trainer's use of the machine at one moment, sampled by its supervisor (every CNNLAB_SYSTEM_SAMPLE_SECONDS)."""

    seconds: float = Field(description="since the attempt's trainer was handed the job")
    at: float | None = Field(None, description="since the job's first sample's attempt began, wall clock (across "
                             "attempts; a gap is a wait in the queue)")
    attempt: int = 1
    cpu_percent: float = Field(description="of one core, summed over the trainer's processes (200: two cores busy)")
    rss_mb: float = Field(description="resident memory of the trainer's processes, MiB")
    gpu_percent: float | None = Field(None, description="utilization of the job's GPUs (NVML), mean over them")
    gpu_memory_mb: float | None = Field(None, description="GPU memory the trainer's processes hold, MiB")
    load_1m: float | None = Field(None, description="the host's 1-minute load average")


class SystemSummary(BaseModel):
    """Mean and peak of a job's system samples, and the host's load averages when it ended."""

    samples: int
    cpu_percent_mean: float | None = None
    cpu_percent_peak: float | None = None
    rss_mb_mean: float | None = None
    rss_mb_peak: float | None = None
    gpu_percent_mean: float | None = None
    gpu_percent_peak: float | None = None
    gpu_memory_mb_mean: float | None = None
    gpu_memory_mb_peak: float | None = None
    load_mean: float | None = Field(None, description="the host's 1-minute load average, mean over the samples")
    load_average: list[float] = Field(default_factory=list, description="the host's 1, 5, 15-minute load averages "
                                      "when the job ended")

    @classmethod
    def of(cls, samples: list[SystemSample], load_average: list[float]) -> "SystemSummary":
        """Mean and peak of each quantity over `samples` (None where no sample has it)."""
        out: dict[str, Any] = {"samples": len(samples), "load_average": load_average}
        for name in ("cpu_percent", "rss_mb", "gpu_percent", "gpu_memory_mb"):
            values = [v for v in (getattr(x, name) for x in samples) if v is not None]
            if values:
                out |= {f"{name}_mean": sum(values) / len(values), f"{name}_peak": max(values)}
        loads = [x.load_1m for x in samples if x.load_1m is not None]
        return cls(**out, load_mean=sum(loads) / len(loads) if loads else None)


class ResultDetails(BaseModel):
    """What a stored result holds beyond its headline: the confusion matrix, the first misclassified test images,
    the epochs, the pack it trained in, the machine use, and the pages' images (drawn once by the worker:
    shared.train.figures)."""

    model_config = ConfigDict(extra="allow")  # rows written by other versions may carry more keys

    confusion: list[list[int]] = Field(default_factory=list, description="K x K counts, [true class][predicted class]")
    misclassified: list[Misclassified] = Field(default_factory=list)
    history: list[EpochMetrics] = Field(default_factory=list)
    pack: PackInfo | None = None
    tta: TTAResult | None = None
    artifacts: dict[str, Any] | None = Field(None, description="the pages' images: PNG data URIs and their captions")
    artifacts_error: str | None = Field(None, description="why the images could not be drawn")
    local: bool = Field(False, description="recorded from a run trained outside the service (`cnnlab train`)")
    system: SystemSummary | None = Field(None, description="the trainer's CPU, memory and GPU use (mean and peak "
                                         "of the supervisor's samples) and the host's load")

    @classmethod
    def stored(cls, raw: dict | None) -> "ResultDetails":
        """A stored row's details; a field that older or hand-written rows hold in another shape is left out."""
        raw = raw or {}
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            bad = {str(e["loc"][0]) for e in exc.errors() if e["loc"]}
            return cls.model_validate({k: v for k, v in raw.items() if k not in bad})
