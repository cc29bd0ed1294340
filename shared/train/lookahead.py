"""Lookahead on an exponential moving average of the weights (airbench94): from epoch START (0-based) on, every
EVERY steps the average moves toward the weights by (1 - decay) and the weights are set to it; each epoch ends with
the weights on the average, so evaluations and checkpoints see it. The decay rises as (step/total)^POWER."""

from __future__ import annotations

import torch

START, EVERY, DECAY, POWER = 3, 5, 0.95, 3.0


def decay(done: int, total: int) -> float:
    """The average's decay at optimizer step `done` of `total`: 0.95^5 x (done/total)^3."""
    return DECAY ** EVERY * (done / total) ** POWER


class Lookahead:
    """A step hook (shared.train.steps.EagerStep.hooks) over `model`'s floating-point state (weights and
    BatchNorm's running statistics)."""

    def __init__(self, model: torch.nn.Module, steps_per_epoch: int, total_steps: int):
        self.model, self.spe, self.total = model, steps_per_epoch, total_steps
        self.average: list[torch.Tensor] | None = None

    def state(self) -> list[torch.Tensor]:
        return [t for t in self.model.state_dict().values() if t.is_floating_point()]

    def begin(self, done: int) -> None:
        """A resumed run past the first update restarts the average from the weights: an epoch ended on it."""
        self.average = [t.clone() for t in self.state()] if done > START * self.spe else None

    def __call__(self, done: int) -> None:
        """After optimizer step `done` (1-based)."""
        if done > START * self.spe and done % EVERY == 0:
            if self.average is None:
                self.average = [t.clone() for t in self.state()]
            else:
                self.update(decay(done, self.total))
        if self.average is not None and (done % self.spe == 0 or done == self.total):
            self.update(1.0)  # the epoch's end: the weights take the average

    @torch.no_grad()
    def update(self, rho: float) -> None:
        """average <- rho average + (1 - rho) weights; weights <- average."""
        for avg, live in zip(self.average, self.state(), strict=True):
            avg.lerp_(live, 1 - rho)
            live.copy_(avg)
