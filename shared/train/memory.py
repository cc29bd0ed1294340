"""A job's peak memory, estimated before it runs: the model is built and run once on the meta device.

Counted: the trainer process's own base per rank (python + torch + the trainer's modules, CNNLAB_TRAINER_BASE_GB,
measured), the weights, their gradients and the optimizer's state (float32), the activations one training batch
keeps for the backward pass (every module's output, float32) or an evaluation chunk holds (the larger; a chunk is
sized to at most EVAL_BYTES, shared.train.evals), and the dataset held resident as uint8. Not
counted: the allocator's slack, temporary buffers inside kernels. So the estimate is a floor: a job refused by it
could never run; one accepted can still need more.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import nn

from shared.lab.settings import settings
from shared.lab.specs import Spec
from shared.train.data import describe
from shared.train.nets import build_model

FLOAT = 4  # bytes of a float32
SPLIT_SIZES = {"mnist": (60_000, 10_000), "cifar10": (50_000, 10_000)}  # (train, test) samples
EVAL_BYTES = {"cpu": 256 * 2**20, "cuda": 2 * 2**30}  # activations one evaluation chunk may hold, by device type
OPTIMIZER_STATES = {"sgd": 1, "adam": 2}  # tensors per parameter: momentum buffer; Adam's two moments


@dataclass(frozen=True)
class MemoryEstimate:
    params: int
    weights_bytes: int  # weights + gradients + optimizer state
    activations_bytes: int  # one training batch's saved activations (this rank's share), or an evaluation chunk's
    data_bytes: int  # the dataset resident as uint8
    base_bytes: int = 0  # the trainer processes themselves before any of the above (all ranks)

    @property
    def total_bytes(self) -> int:
        return self.base_bytes + self.weights_bytes + self.activations_bytes + self.data_bytes

    @property
    def total_gb(self) -> float:
        return self.total_bytes / 2**30


def activation_bytes(model: nn.Module, batch: torch.Tensor) -> int:
    """Sum of every leaf module's output size for one forward pass (meta tensors: no memory is used)."""
    total = 0

    def count(_module, _inputs, output):
        nonlocal total
        if isinstance(output, torch.Tensor):
            total += output.numel() * FLOAT

    hooks = [m.register_forward_hook(count) for m in model.modules() if not list(m.children())]
    try:
        model(batch)
    finally:
        for h in hooks:
            h.remove()
    return total


def estimate(spec: Spec, shape: tuple[int, int, int], num_classes: int, samples: tuple[int, int] | None = None
             ) -> MemoryEstimate:
    """Peak memory of one rank of `spec` on inputs of `shape`; `samples` is (train, test) split sizes if known."""
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = build_model(spec.model, shape, num_classes, **spec.model_args)
        per_rank = -(-spec.batch_size // spec.world_size)  # a rank's share of the global batch, rounded up
        train_acts = activation_bytes(model, torch.empty(per_rank, *shape))
        per_sample = activation_bytes(model, torch.empty(1, *shape))
    params = sum(p.numel() for p in model.parameters())
    weights = params * FLOAT * (2 + OPTIMIZER_STATES.get(spec.optimizer, 2))
    # An ImageFolder's size is unknown without listing it: its limits count if given, else nothing (a floor).
    train, test = samples or SPLIT_SIZES.get(spec.dataset, (spec.train_limit or 0, spec.test_limit or 0))
    train, test = min(train, spec.train_limit or train), min(test, spec.test_limit or test)
    # The evaluation's chunk: the whole test split, up to the CPU's EVAL_BYTES (the smaller budget: still a floor).
    activations = max(train_acts, min(per_sample * max(test, 1), EVAL_BYTES["cpu"]))
    base = int(settings().trainer_base_gb * 2**30) * spec.world_size  # every rank is a process that imports torch
    return MemoryEstimate(params, weights, activations, (train + test) * shape[0] * shape[1] * shape[2], base)


def job_need(spec: Spec, data_root=None) -> tuple[int, int]:
    """(bytes a pack shares, bytes each member adds) of `spec` on a warm trainer, whose own base is paid already:
    the dataset once; each member its weights, gradients, optimizer state and activations (a pack stacks them)."""
    shape, classes = describe(spec.dataset, data_root)
    need = estimate(spec, shape, len(classes))
    return need.data_bytes, need.weights_bytes + need.activations_bytes
