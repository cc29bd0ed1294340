"""Experiment specs: a validated pydantic model, the lab's presets, and preset + overrides resolution."""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from shared.lab.models import CATALOG, model_facts, model_names, unknown_model

MNIST_MEAN, MNIST_STD = [0.1307], [0.3081]
DATASET_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}")
# A stand-in that holds the same images as a built-in set: a preset's normalization stays valid on it.
SAME_IMAGES = {"cifar10-jpeg": "cifar10"}
# A full spec's fields worth saying when left to their defaults (value: how the lab's presets differ).
NOTED_DEFAULTS = {"epochs": "", "batch_size": "", "optimizer": "", "lr": "",
                  "momentum": " (the lab's SGD presets use 0.5: without it MNIST learns far slower)", "mean": ""}
SYNC_BN_NEEDS_CUDA = "sync_bn needs GPUs: PyTorch's SyncBatchNorm has no CPU implementation"
FP16_NEEDS_CUDA = ("fp16 needs device cuda (a job on device auto may run on a CPU worker): its loss scaling and "
                   "half-precision kernels are CUDA's; on the CPU use bf16 (autocast, no loss scaling) or fp32")


class SpecError(ValueError):
    """A spec that does not validate; `errors` holds one {field, message} per problem."""

    def __init__(self, errors: list[dict[str, str]]):
        self.errors = errors
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))


STORED: dict[str, bool] = {"stored": True}  # the validation context of `Spec.stored`


class Spec(BaseModel):
    """Everything that defines a training run; saved with every job, result and checkpoint."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # NaN is not JSON

    model: str = Field(description=f"a model of the catalog: {', '.join(sorted(CATALOG))} (GET /presets shows them "
                       "in use), or a net of a package CNNLAB_MODEL_PACKAGES allows (GET /models lists them all)",
                       json_schema_extra=lambda schema: schema.update(enum=model_names()))
    model_args: dict[str, Any] = Field(default_factory=dict, description="constructor arguments, e.g. n_feature")
    dataset: str = Field(description="mnist, cifar10, or an ImageFolder directory name under the data root",
                         json_schema_extra={"pattern": f"^{DATASET_NAME.pattern}$"})
    epochs: int = Field(1, ge=1, le=1000)
    batch_size: int = Field(64, ge=1, le=65536, description="global batch, split across ranks")
    test_batch_size: int = Field(1000, ge=1, le=65536)
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = Field(0.01, gt=0, le=10)
    momentum: float = Field(0.0, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0, le=1)
    augment: bool = Field(False, description="random 32-style crop with 4-pixel padding + horizontal flip")
    translate: int = Field(4, ge=0, le=16, description="augment: the crop's padding in pixels (a shift of up to "
                           "this many pixels each way)")
    padding: Literal["zeros", "reflect"] = Field("zeros", description="augment: how the crop pads (zeros as "
                                                 "RandomCrop; reflect mirrors the border)")
    flip: Literal["random", "alternating"] = Field("random", description="augment: random (each image flipped with "
                                                   "probability 1/2 each epoch) or alternating (each image flipped "
                                                   "every other epoch, from a random first epoch)")
    nesterov: bool = Field(False, description="sgd: Nesterov momentum (needs momentum > 0)")
    bias_lr_scale: float = Field(1.0, gt=0, le=1000, description="BatchNorm biases train at lr x this (weight "
                                 "decay / this, the same decay per step)")
    lookahead: bool = Field(False, description="after epoch 3, every 5 steps pull the weights to their running "
                            "average (decay rising to 0.95^5 over the run) and copy it back; each epoch ends on it")
    whiten_bias_epochs: int | None = Field(None, ge=0, le=1000, description="a net with a whitening layer: train its "
                                           "bias for the first N epochs, then freeze it; null: trained throughout")
    tta: int = Field(0, ge=0, le=2, description="test-time augmentation of the final evaluation: 0 none, 1 mirror, "
                     "2 mirror + 1-pixel translations (6 views); the run's test_accuracy is then the TTA one, the "
                     "plain one recorded beside it")
    mean: list[float] | None = Field(None, description="per-channel normalization mean; null: dataset default")
    std: list[float] | None = Field(None, description="per-channel normalization std; null: dataset default")
    permute_pixels: bool = False
    permutation_seed: int = Field(0, ge=0, lt=2**63)
    permutation: Literal["fixed", "per_seed"] = Field("fixed", description="permute_pixels: fixed (one permutation, "
                                                      "from permutation_seed, for every seed) or per_seed (a new one "
                                                      "for each seed, as the lab draws one per run)")
    seed: int = Field(0, ge=0, lt=2**63)
    train_limit: int | None = Field(None, ge=1, description="use only the first N training samples")
    test_limit: int | None = Field(None, ge=1, description="use only the first N test samples")
    world_size: int = Field(1, ge=1, le=64, description="DDP processes; 1 trains in one process")
    sync_bn: bool = Field(False, description="SyncBatchNorm across ranks instead of per-rank BatchNorm")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="the forward passes' dtype under autocast (weights, optimizer state and loss stay fp32): "
        "auto (bf16 on CUDA, fp32 on the CPU), fp32, bf16 (CPU or CUDA), fp16 (CUDA only: device cuda; the loss "
        "scaled by a GradScaler)")
    channels_last: bool | None = Field(None, description="NHWC memory format for inputs and weights; null: on for "
                                       "the convolutional nets")
    log_every: int | None = Field(None, ge=1, description="record the training loss (mean of the last N steps) "
                                  "every N steps; null: about 100 points over the run")
    eval_every: int | None = Field(None, ge=0, le=10**12, description="evaluate on a fixed test subset every N "
                                   "training samples within epochs (the full test set after every epoch); null: "
                                   "about 20 points over the run within an evaluation budget; 0: at epoch ends only")
    eval_samples: int = Field(1000, ge=1, le=10**7, description="most test images in the subset evaluated within "
                              "epochs (the first N of the test split)")
    shuffle: bool = Field(True, description="a fresh order of the training set every epoch (from seed and epoch); "
                          "false: the same order every epoch")
    sort_by_class: bool = Field(False, description="put the training set in label order (stable) before the "
                                "epoch's order is drawn; with shuffle false every epoch is all 0s, then all 1s, ...")
    steps: int | None = Field(None, ge=1, le=10_000_000, description="train for this many optimizer steps instead "
                              "of `epochs` passes (the last pass is cut short); null: `epochs` decides")
    lr_schedule: Literal["none", "cosine", "onecycle", "triangle"] = Field(
        "none", description="learning rate over the run's optimizer steps: none (constant lr), cosine "
        "(CosineAnnealingLR from lr to 0), onecycle (OneCycleLR with max_lr = lr), triangle (linear from 0.2 lr up "
        "to lr at 23% of the steps, then down to 0.07 lr)")
    label_smoothing: float = Field(0.0, ge=0, lt=0.5, description="cross-entropy label smoothing in training "
                                   "(the evaluation loss stays plain cross-entropy)")
    max_minutes: float | None = Field(None, gt=0, le=43_200, description="wall-time limit of one run (attempt) in "
                                      "minutes: the worker kills it when reached and the job fails; null: none")
    memory_gb: float | None = Field(None, gt=0, le=4096, description="resident memory (GB) the job's training "
                                    "processes may use together: the worker kills them above it and the job fails; "
                                    "null: its queue's (CNNLAB_QUEUE_MEMORY_GB)")
    keep_checkpoints: int = Field(2, ge=1, le=1000, description="epoch checkpoints kept: the newest N (the final "
                                  "one among them); older ones are deleted, file and record, as the run goes")

    @classmethod
    def stored(cls, data: dict[str, Any]) -> Spec:
        """A spec the database holds, checked in full when it was submitted: its model is not looked up in the
        catalog again (a model since renamed fails the job where it is built, not the worker's claim)."""
        return cls.model_validate(data, context=STORED)

    @field_validator("model")
    @classmethod
    def _known_model(cls, v: str, info: ValidationInfo) -> str:
        if info.context is not STORED and v not in model_names():
            raise ValueError(unknown_model(v))
        return v

    @field_validator("dataset")
    @classmethod
    def _safe_dataset(cls, v: str) -> str:
        # The name becomes a directory under the data root: one plain component, no "..", no separators.
        if not DATASET_NAME.fullmatch(v):
            raise ValueError("must be a plain directory name (letters, digits, '-', '_', '.'; not starting with '.')")
        return v

    @field_validator("precision")
    @classmethod
    def _fp16_on_cuda(cls, v: str, info: ValidationInfo) -> str:
        if v == "fp16" and info.data.get("device") != "cuda":  # `device` is declared, so validated, before it
            raise ValueError(FP16_NEEDS_CUDA)
        return v

    @field_validator("std")
    @classmethod
    def _positive_std(cls, v: list[float] | None) -> list[float] | None:
        if v is not None and any(s <= 0 for s in v):
            raise ValueError("every std must be > 0")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "Spec":
        if (self.mean is None) != (self.std is None):
            raise ValueError("mean and std go together")
        if self.mean is not None and (len(self.mean) != len(self.std) or not 1 <= len(self.mean) <= 4):
            raise ValueError("mean and std need one value per channel")
        if self.sync_bn and self.device == "cpu":
            raise ValueError(SYNC_BN_NEEDS_CUDA)
        if self.nesterov and (self.optimizer != "sgd" or self.momentum <= 0):
            raise ValueError("nesterov needs optimizer sgd and momentum > 0")
        if self.batch_size < self.world_size:
            raise ValueError("batch_size must be at least world_size (the global batch is split across ranks)")
        return self

    @property
    def needs_gpu(self) -> bool:
        return self.device == "cuda"


def _seed_mnist(**kw) -> dict[str, Any]:
    base = dict(dataset="mnist", epochs=1, batch_size=64, test_batch_size=1000, optimizer="sgd",
                lr=0.01, momentum=0.5, mean=MNIST_MEAN, std=MNIST_STD)
    return base | kw


# The lab's experiments, hyperparameters exactly as in ../shared/seed/.
PRESETS: dict[str, dict[str, Any]] = {
    "mnist-fc": _seed_mnist(model="fc2", model_args={"n_hidden": 8}),
    "mnist-cnn": _seed_mnist(model="cnn", model_args={"n_feature": 6}),
    "mnist-fc-permuted": _seed_mnist(model="fc2", model_args={"n_hidden": 8}, permute_pixels=True),
    "mnist-cnn-permuted": _seed_mnist(model="cnn", model_args={"n_feature": 6}, permute_pixels=True),
    "cifar10-lenet": dict(model="lenet", dataset="cifar10", epochs=10, batch_size=64, test_batch_size=8,
                          optimizer="adam", lr=1e-3, mean=[0.5] * 3, std=[0.5] * 3),
    # The lab's answer to 4.6: LeCun's 1989 LeNet used sigmoid activations and average pooling (else as above).
    "cifar10-lenet-1989": dict(model="lenet", model_args={"activation": "sigmoid", "pool": "avg"}, dataset="cifar10",
                               epochs=10, batch_size=64, test_batch_size=8, optimizer="adam", lr=1e-3,
                               mean=[0.5] * 3, std=[0.5] * 3),
    "cifar10-vgg": dict(model="vgg", dataset="cifar10", epochs=10, batch_size=128, test_batch_size=128,
                        optimizer="adam", lr=1e-3, augment=True,
                        mean=[0.4914, 0.4822, 0.4465], std=[0.2023, 0.1994, 0.2010]),
    # airbench94's recipe (Jordan 2024, arXiv 2404.00498) as ordinary spec fields; its per-1024-example sum-loss
    # hyperparameters turned into mean-loss ones: lr 11.5 / (1 + 1/(1 - 0.85)) = 1.5, weight decay
    # 0.0153 / (1 + 1/0.15) / 1.5 = 1.33e-3 (the same decay per step).
    "cifar10-fast": dict(model="fastnet", dataset="cifar10", epochs=10, batch_size=1024, test_batch_size=2000,
                         optimizer="sgd", lr=1.5, momentum=0.85, nesterov=True, weight_decay=1.33e-3,
                         bias_lr_scale=64.0, label_smoothing=0.2, lr_schedule="triangle", lookahead=True,
                         whiten_bias_epochs=3, augment=True, translate=2, padding="reflect", flip="alternating",
                         tta=2, eval_every=0, mean=[0.4914, 0.4822, 0.4465], std=[0.2470, 0.2435, 0.2616]),
}


def _validate(data: dict[str, Any]) -> Spec:
    try:
        return Spec.model_validate(data)
    except ValidationError as exc:
        raise SpecError([
            {"field": ".".join(str(p) for p in e["loc"]) or "spec", "message": e["msg"].removeprefix("Value error, ")}
            for e in exc.errors()
        ]) from None


def preset_spec(name: str) -> Spec:
    if name not in PRESETS:
        raise SpecError([{"field": "preset", "message": f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}"}])
    return _validate(PRESETS[name])


class SpecWarning(BaseModel):
    """Something the submitter should know about the spec that runs: a default taken, a value replaced."""

    field: str
    message: str


class Resolved(BaseModel):
    """The spec a submission runs, and the warnings the submit-time rules gave about it."""

    spec: Spec
    warnings: list[SpecWarning] = Field(default_factory=list)


def resolve(preset: str | None = None, overrides: dict[str, Any] | None = None,
            spec: dict[str, Any] | None = None) -> Spec:
    """A full spec, or a preset with overrides (dotted keys reach into model_args); the rules of `resolve_checked`."""
    return resolve_checked(preset, overrides, spec).spec


def resolve_checked(preset: str | None = None, overrides: dict[str, Any] | None = None,
                    spec: dict[str, Any] | None = None) -> Resolved:
    """The one set of submit-time rules (API, CLI, sweeps): the spec to run and what to tell the submitter."""
    if (preset is None) == (spec is None):
        raise SpecError([{"field": "preset", "message": "give either a preset (with optional overrides) or a full spec"}])
    if spec is not None:
        if overrides:
            raise SpecError([{"field": "overrides", "message": "overrides go with a preset, not a full spec"}])
        if not isinstance(spec, dict):
            raise SpecError([{"field": "spec", "message": "must be an object"}])
        out = _validate(spec)
        return Resolved(spec=out, warnings=defaults_taken(spec, out))
    if overrides is not None and not isinstance(overrides, dict):
        raise SpecError([{"field": "overrides", "message": "must be an object"}])
    data, warnings = dataset_normalization(preset_spec(preset), overrides or {})
    return Resolved(spec=_validate(apply_overrides(data, overrides or {})), warnings=warnings)


def dataset_normalization(base: Spec, overrides: dict[str, Any]) -> tuple[dict[str, Any], list[SpecWarning]]:
    """A dataset override takes that dataset's own mean/std (computed from its training set) unless mean/std are
    given too: the preset's values describe the preset's images (MNIST's one channel on CIFAR-10 cannot run)."""
    data, new = base.model_dump(), overrides.get("dataset", base.dataset)
    if not isinstance(new, str) or base.mean is None or "mean" in overrides or "std" in overrides \
            or SAME_IMAGES.get(new, new) == SAME_IMAGES.get(base.dataset, base.dataset):
        return data, []
    data["mean"] = data["std"] = None
    return data, [SpecWarning(field="mean", message=f"the preset's mean/std ({_short(base.mean)} / {_short(base.std)}) "
                              f"are {base.dataset}'s; {new} uses its own, computed from its training set "
                              "(set mean and std to choose)")]


def defaults_taken(given: dict[str, Any], spec: Spec) -> list[SpecWarning]:
    """A full spec's hyperparameters left out: which defaults it runs with, and where the presets differ."""
    out = []
    for field, note in NOTED_DEFAULTS.items():
        if field in given or (field == "momentum" and spec.optimizer != "sgd"):
            continue
        value = getattr(spec, field)
        shown = "the dataset's own (computed from its training set)" if field == "mean" else json.dumps(value)
        out.append(SpecWarning(field=field, message=f"not given: default {shown}{note}"))
    return out


def _short(values: list[float]) -> str:
    return ", ".join(f"{v:.4g}" for v in values)


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Spec data with `overrides` set (dotted keys reach into model_args); not yet validated."""
    data = dict(data)
    if "model" in overrides and overrides["model"] != data.get("model"):
        data["model_args"] = {}  # the preset's arguments belong to the preset's model
    for key, value in overrides.items():
        head, _, rest = key.partition(".")
        if rest and head == "model_args":
            data["model_args"] = {**(data.get("model_args") or {}), rest: value}
        elif rest:
            raise SpecError([{"field": key, "message": "only model_args takes dotted keys"}])
        else:
            data[key] = value
    return data


def parse_assignments(pairs: list[str]) -> dict[str, Any]:
    """CLI `--set key=value` pairs; values are JSON where they parse (1, 0.5, true, [..]) else strings."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise SpecError([{"field": pair, "message": "expected key=value"}])
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw
    return out


# What a recipe comparison ignores: where a run trains and how often it logs and evaluates, not what it learns.
IGNORED = ("seed", "device", "log_every", "eval_every", "eval_samples")


def canonical(spec: dict[str, Any]) -> dict[str, Any] | None:
    """A spec as the recipe compares it: defaults filled (model_args too), the ignored fields dropped."""
    try:
        data = Spec.model_validate(spec).model_dump()
        args = {**model_facts(data["model"]).arg_defaults, **data["model_args"]}  # {} and the defaults: one net
    except (ValueError, TypeError):  # a spec an older version wrote that no longer validates: not the recipe
        return None
    return {k: v for k, v in data.items() if k not in IGNORED} | {"model_args": args}
