"""The fast recipe's ingredients where they hook into the engine: before training (the whitening layer fitted to
the training images) and after each optimizer step (lookahead, the whitening bias's freeze)."""

from __future__ import annotations

import dataclasses
import time

import torch

from shared.lab.results import TTAResult
from shared.lab.specs import Spec
from shared.train import tta as views
from shared.train.batches import DevicePipeline
from shared.train.lookahead import Lookahead
from shared.train.whitening import SAMPLE, BiasFreeze, Whitening

VIEWS = {1: 2, 2: 6}  # views per test image at each TTA level (shared.train.tta.views)


def attach(spec: Spec, model: torch.nn.Module, train: DevicePipeline, steps_per_epoch: int, total_steps: int) -> list:
    """Prepare `model` for training (`prepare`) and return its step hooks (`step_hooks`)."""
    prepare(model, train)
    return step_hooks(spec, model, steps_per_epoch, total_steps)


def prepare(model: torch.nn.Module, train: DevicePipeline) -> None:
    """A net with a `prepare(images)` (fastnet's whitening) sees the first SAMPLE normalized training images."""
    if hasattr(model, "prepare"):
        x, _ = train.batch(torch.arange(min(SAMPLE, len(train)), device=train.device))
        model.prepare(x)


def step_hooks(spec: Spec, model: torch.nn.Module, steps_per_epoch: int, total_steps: int) -> list:
    """What runs after each optimizer step for `spec` (in this order): the bias freeze, lookahead."""
    hooks: list = []
    whitening = [m for m in model.modules() if isinstance(m, Whitening)]
    if whitening and spec.whiten_bias_epochs is not None:
        hooks.append(BiasFreeze(whitening[0], spec.whiten_bias_epochs, steps_per_epoch))
    if spec.lookahead:
        hooks.append(Lookahead(model, steps_per_epoch, total_steps))
    return hooks


def tta(run, last):
    """`last` (an engine Evaluation of `run`) and, where the spec asks for test-time augmentation, the TTA
    evaluation in its place with the plain one beside it (its time added to the run's evaluation time)."""
    level = run.spec.tta
    if not level:
        return last, None
    t0 = time.perf_counter()
    loss, accuracy, predictions = views.evaluate(run.model, run.test_data, run.spec.test_batch_size, level,
                                                 run.step.autocast)
    seconds = time.perf_counter() - t0
    run.eval_seconds += seconds
    result = TTAResult(level=level, views=VIEWS[level], accuracy=accuracy, loss=loss, plain_accuracy=last.accuracy,
                       plain_loss=last.loss, seconds=seconds)
    return dataclasses.replace(last, loss=loss, accuracy=accuracy, predictions=predictions), result
