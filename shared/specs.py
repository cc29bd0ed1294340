"""Experiment specs: a validated pydantic model, the lab's presets, and preset + overrides resolution."""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

MNIST_MEAN, MNIST_STD = [0.1307], [0.3081]
DATASET_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}")
SYNC_BN_NEEDS_CUDA = "sync_bn needs GPUs: PyTorch's SyncBatchNorm has no CPU implementation"


class SpecError(ValueError):
    """A spec that does not validate; `errors` holds one {field, message} per problem."""

    def __init__(self, errors: list[dict[str, str]]):
        self.errors = errors
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))


class Spec(BaseModel):
    """Everything that defines a training run; saved with every job, result and checkpoint."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # NaN is not JSON

    model: str = Field(description="a registered model: fc2, cnn, lenet, vgg (GET /presets shows them in use)")
    model_args: dict[str, Any] = Field(default_factory=dict, description="constructor arguments, e.g. n_feature")
    dataset: str = Field(description="mnist, cifar10, or an ImageFolder directory name under the data root")
    epochs: int = Field(1, ge=1, le=1000)
    batch_size: int = Field(64, ge=1, le=65536, description="global batch, split across ranks")
    test_batch_size: int = Field(1000, ge=1, le=65536)
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = Field(0.01, gt=0, le=10)
    momentum: float = Field(0.0, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0, le=1)
    augment: bool = Field(False, description="random 32-style crop with 4-pixel padding + horizontal flip")
    mean: list[float] | None = Field(None, description="per-channel normalization mean; null: dataset default")
    std: list[float] | None = Field(None, description="per-channel normalization std; null: dataset default")
    permute_pixels: bool = False
    permutation_seed: int = Field(0, ge=0, lt=2**63)
    seed: int = Field(0, ge=0, lt=2**63)
    train_limit: int | None = Field(None, ge=1, description="use only the first N training samples")
    test_limit: int | None = Field(None, ge=1, description="use only the first N test samples")
    world_size: int = Field(1, ge=1, le=64, description="DDP processes; 1 trains in one process")
    sync_bn: bool = Field(False, description="SyncBatchNorm across ranks instead of per-rank BatchNorm")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "fp32", "bf16"] = Field("auto", description="auto: bf16 autocast on CUDA, fp32 on CPU")
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
    lr_schedule: Literal["none", "cosine", "onecycle"] = Field(
        "none", description="learning rate over the run's optimizer steps: none (constant lr), cosine "
        "(CosineAnnealingLR from lr to 0), onecycle (OneCycleLR with max_lr = lr)")
    label_smoothing: float = Field(0.0, ge=0, lt=0.5, description="cross-entropy label smoothing in training "
                                   "(the evaluation loss stays plain cross-entropy)")

    @field_validator("model")
    @classmethod
    def _known_model(cls, v: str) -> str:
        from shared.train.nets import model_names  # lazily: importing specs must not import torch

        if v not in model_names():
            raise ValueError(f"unknown model {v!r}; choose one of {', '.join(model_names())}")
        return v

    @field_validator("dataset")
    @classmethod
    def _safe_dataset(cls, v: str) -> str:
        # The name becomes a directory under the data root: one plain component, no "..", no separators.
        if not DATASET_NAME.fullmatch(v):
            raise ValueError("must be a plain directory name (letters, digits, '-', '_', '.'; not starting with '.')")
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


def resolve(preset: str | None = None, overrides: dict[str, Any] | None = None,
            spec: dict[str, Any] | None = None) -> Spec:
    """A full spec, or a preset with overrides (dotted keys reach into model_args)."""
    if (preset is None) == (spec is None):
        raise SpecError([{"field": "preset", "message": "give either a preset (with optional overrides) or a full spec"}])
    if spec is not None:
        if overrides:
            raise SpecError([{"field": "overrides", "message": "overrides go with a preset, not a full spec"}])
        if not isinstance(spec, dict):
            raise SpecError([{"field": "spec", "message": "must be an object"}])
        return _validate(spec)
    if overrides is not None and not isinstance(overrides, dict):
        raise SpecError([{"field": "overrides", "message": "must be an object"}])
    return _validate(apply_overrides(preset_spec(preset).model_dump(), overrides or {}))


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
