"""When a run evaluates within its epochs and on how many test images: plain arithmetic, no torch.

Every epoch ends with an evaluation on the whole test split (as always). Between those, a run evaluates the
first `subset` test images every `every` training samples, so a one-epoch run still draws a curve. By default
(`eval_every` null) that is about POINTS points over the run, held to an evaluation budget: the in-training
evaluations together read at most BUDGET x the run's training samples. On 2 CPU cores a test image costs about half
a training sample of mnist-cnn (its forward pass alone, but in small batches), so the budget keeps the slowdown
near 2-3% (bench/throughput.py --eval-overhead measures it; the target is at most 5%).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from shared.lab.specs import Spec

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
