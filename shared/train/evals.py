"""Evaluation: when a run evaluates within its epochs and on how many test images (plain arithmetic), and the
evaluation loop itself, in large chunks of the resident test split (one model, or a pack's stacked models at once).

Every epoch ends with an evaluation on the whole test split (as always). Between those, a run evaluates the
first `subset` test images every `every` training samples, so a one-epoch run still draws a curve. By default
(`eval_every` null) that is about POINTS points over the run, held to an evaluation budget: the in-training
evaluations together read at most BUDGET x the run's training samples. On 2 CPU cores a test image costs about half
a training sample of mnist-cnn (its forward pass alone, but in small batches), so the budget keeps the slowdown
near 2-3% (bench/throughput.py --eval-overhead measures it; the target is at most 5%).

The loop runs in chunks sized by memory (EVAL_BYTES of activations), not at the spec's `test_batch_size`: in eval
mode (no dropout, BatchNorm on its running statistics) no net of the lab's computes a sample's output from its
batch mates, so the batch changes nothing but float rounding. `test_batch_size` is honoured only for a net that
does (`batch_dependent`: a BatchNorm without running statistics), which none of today's nets is.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from shared.lab.results import Misclassified
from shared.lab.specs import Spec
from shared.train.batches import DevicePipeline
from shared.train.memory import EVAL_BYTES, activation_bytes
from shared.train.nets import build_model

POINTS = 20  # evaluations over a run by default, epoch ends included
LOSS_POINTS = 100  # training-loss points over a run by default (log_every null)
BUDGET = 0.05  # default in-training evaluation: test images read <= this x the run's training samples
MIN_SUBSET = 200  # fewer test images than this give too coarse an accuracy (1 image = 0.5 points): fewer points instead


@dataclass(frozen=True)
class EvalPlan:
    """A run's evaluations within epochs: every `every` training samples (0: none), on the first `subset` test images."""

    every: int
    subset: int


def run_samples(train_samples: int, batch_size: int, epochs: int, steps: int | None) -> int:
    """Training samples a run sees in all: `epochs` passes, or `steps` batches (the passes' last batches short)."""
    if steps is None:
        return train_samples * epochs
    per_epoch = math.ceil(train_samples / batch_size)
    full, rest = divmod(steps, per_epoch)
    return full * train_samples + min(rest * batch_size, train_samples)


def eval_plan(spec: Spec, total_samples: int, test_samples: int) -> EvalPlan:
    """The spec's plan: its own `eval_every`, or about POINTS points within the budget."""
    subset = max(1, min(spec.eval_samples, test_samples))
    if spec.eval_every is not None:
        return EvalPlan(every=spec.eval_every, subset=subset)
    budget = BUDGET * total_samples
    if subset * POINTS > budget:
        subset = min(subset, max(MIN_SUBSET, int(budget // POINTS)))
    points = min(POINTS, int(budget // subset))
    return EvalPlan(every=math.ceil(total_samples / points) if points >= 1 else 0, subset=subset)


def due_within(plan: EvalPlan, before: int, epoch_samples: int) -> list[int]:
    """The counts of an epoch's samples (all ranks) after which it evaluates: the multiples of `plan.every` past
    `before` (samples of the earlier epochs) and short of the epoch's end, which evaluates on the full split anyway."""
    if plan.every <= 0:
        return []
    first = (before // plan.every + 1) * plan.every
    return [k - before for k in range(first, before + epoch_samples, plan.every)]


def log_interval(spec: Spec, total_steps: int) -> int:
    """Steps per training-loss point: the spec's `log_every`, or about LOSS_POINTS over the run."""
    return spec.log_every or max(1, round(total_steps / LOSS_POINTS))


@dataclass
class Evaluation:
    loss: float  # mean cross-entropy over the split
    accuracy: float  # a fraction
    predictions: torch.Tensor  # (N,) predicted class of every sample, on the CPU


def batch_dependent(model: torch.nn.Module) -> bool:
    """Whether the model in eval mode computes a sample's output from its batch mates (BatchNorm without running
    statistics): only then can the evaluation batch change a number."""
    return any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and not m.track_running_stats
               for m in model.modules())


def eval_chunk(spec: Spec, device: torch.device, shape: tuple[int, int, int], num_classes: int,
               members: int = 1) -> int:
    """Test samples per evaluation chunk: the spec's `test_batch_size` where the batch can change a number, else as
    many as EVAL_BYTES of activations hold (every leaf module's output, float32; `members` stacked models at once)."""
    with torch.device("meta"), warnings.catch_warnings():  # shapes only: no memory, no RNG draws
        warnings.simplefilter("ignore")
        model = build_model(spec.model, shape, num_classes, **spec.model_args)
        if batch_dependent(model):
            return spec.test_batch_size
        per_sample = activation_bytes(model, torch.empty(1, *shape))
    return max(1, EVAL_BYTES.get(device.type, EVAL_BYTES["cpu"]) // max(1, per_sample * members))


@torch.inference_mode()
def evaluate(model, data: DevicePipeline, batch_size: int, autocast=contextlib.nullcontext,
             limit: int | None = None) -> Evaluation:
    """Mean loss, accuracy and the predicted class of every sample (of the first `limit` when given)."""
    model.eval()
    return evaluate_stacked(lambda x: model(x)[None], data, batch_size, autocast, limit)[0]


@torch.inference_mode()
def evaluate_stacked(forward, data: DevicePipeline, batch_size: int, autocast=contextlib.nullcontext,
                     limit: int | None = None) -> list[Evaluation]:
    """`evaluate` for S models at once: `forward(x)` maps a chunk (B, C, H, W) to logits (S, B, K)."""
    n = len(data) if limit is None else min(limit, len(data))
    loss_sum, preds = None, []
    for lo in range(0, n, batch_size):
        idx = torch.arange(lo, min(lo + batch_size, n), device=data.device)
        x, y = data.batch(idx)
        with autocast():
            out = forward(x)
        s = out.shape[0]
        losses = F.cross_entropy(out.flatten(0, 1).float(), y.repeat(s), reduction="none").view(s, -1)
        chunk = losses.double().sum(1)  # (S,)
        loss_sum = chunk if loss_sum is None else loss_sum + chunk
        preds.append(out.argmax(-1))
    pred = torch.cat(preds, 1)  # (S, N)
    correct = (pred == data.labels[:n]).sum(1).tolist()
    return [Evaluation(loss / n, c / n, p) for loss, c, p in zip(loss_sum.tolist(), correct, pred.cpu(), strict=True)]


def confusion_matrix(pred: torch.Tensor, labels: torch.Tensor, k: int) -> list[list[int]]:
    """(true class, predicted class) counts, K x K."""
    return torch.bincount(labels * k + pred, minlength=k * k).view(k, k).tolist()


def misclassified(pred: torch.Tensor, labels: torch.Tensor, n: int = 16) -> list[Misclassified]:
    """The first n wrong test predictions: test index, true and predicted class."""
    wrong = (pred != labels).nonzero().flatten()[:n].tolist()
    return [Misclassified(index=i, label=int(labels[i]), predicted=int(pred[i])) for i in wrong]
