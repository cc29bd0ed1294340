"""Stacked models: S models of one architecture as (S, ...) parameters and buffers called through vmap, and the
engine's training step over them (shared.train.packs trains a pack with it).

BatchNorm stacks too: under vmap each member's running statistics are its own slice of the stacked buffers,
updated in place by the training forward; in eval mode (`Stack.logits`) each member uses its own.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state, vmap

from shared.train.steps import EagerStep, GraphedStep


class Stack:
    """S models of one architecture as stacked (S, ...) parameters and buffers, called through vmap."""

    def __init__(self, models: Sequence[torch.nn.Module], label_smoothing: Sequence[float] = ()):
        self.params, self.buffers = stack_module_state(list(models))  # new leaves, (S, ...) each
        self.base = copy.deepcopy(models[0]).to("meta").train()  # the architecture only, no storage
        self.size = len(models)
        smoothing = sorted(set(label_smoothing)) or [0.0]
        # One value: cross_entropy's own; several: each member's (S,), as a tensor vmap hands out per member.
        self.smoothing = smoothing[0] if len(smoothing) == 1 else \
            torch.tensor(list(label_smoothing), device=next(iter(self.params.values())).device)

    def train(self) -> None:
        """Training mode, as the epoch loop sets before every epoch."""
        self.base.train()

    def losses(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Each member's mean cross-entropy (S,) for its own batch: x (S, B, C, H, W), y (S, B)."""
        eps = self.smoothing

        def one(params, buffers, xs, ys, e):
            out = functional_call(self.base, (params, buffers), (xs,)).float()  # the loss in fp32 under autocast
            return F.cross_entropy(out, ys, label_smoothing=eps) if e is None else smoothed_cross_entropy(out, ys, e)

        per_member = isinstance(eps, torch.Tensor)
        return vmap(one, in_dims=(0, 0, 0, 0, 0 if per_member else None))(
            self.params, self.buffers, x, y, eps if per_member else None)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Every member's logits (S, B, K) for one shared chunk x (B, C, H, W), in eval mode (BatchNorm's running
        statistics); the stack goes back to training mode after."""
        self.base.eval()
        try:
            return vmap(lambda p, b: functional_call(self.base, (p, b), (x,)))(self.params, self.buffers)
        finally:
            self.base.train()


def smoothed_cross_entropy(logits: torch.Tensor, y: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """cross_entropy(logits, y, label_smoothing=eps) with eps a tensor (one member's, under vmap): torch's formula,
    (1 - eps) * nll + eps * the mean over classes of -log p, averaged over the batch."""
    logp = F.log_softmax(logits, -1)
    nll = -logp.gather(-1, y[:, None]).squeeze(-1)
    return ((1 - eps) * nll - eps * logp.mean(-1)).mean()


class StackedStep(EagerStep):
    """The engine's step for a Stack: sample indices come seed-major, (S*B,), and the loss is (S,)."""

    def __init__(self, model: Stack, optimizer, data, autocast):
        super().__init__(model, optimizer, data, autocast)
        self.alive = torch.ones(model.size, dtype=torch.bool, device=data.device)  # updated in place

    def forward(self, idx, offsets=None, flips=None) -> torch.Tensor:
        x, y = self.data.batch(idx, offsets, flips)  # one gather for every seed's batch: (S*B, C, H, W)
        s = self.model.size
        with self.autocast():
            return self.model.losses(x.view(s, -1, *x.shape[1:]), y.view(s, -1))

    def objective(self, loss: torch.Tensor) -> torch.Tensor:
        # d(sum)/d(loss_s) = 1: each seed's gradient is that of its own mean loss. `where`, not a product:
        # a dead member's NaN times 0 would still be NaN (it stays in that member's slice either way).
        return torch.where(self.alive, loss, torch.zeros_like(loss)).sum()


class GraphedStackedStep(GraphedStep, StackedStep):
    """The stacked step replayed as a CUDA graph (GraphedStep's capture calls StackedStep's forward)."""


def member_optimizer_state(stacked: dict, index: int, param_groups: list[dict]) -> dict:
    """One member's slice of a stacked optimizer's state_dict, with its own optimizer's `param_groups` (its lr...)."""

    def pick(v):
        # Per-element state is (S, ...); Adam's step count is 0-d and shared. Cloned: a view would save all seeds.
        return v[index].clone() if isinstance(v, torch.Tensor) and v.dim() > 0 else v

    state = {k: {name: pick(v) for name, v in s.items()} for k, s in stacked["state"].items()}
    return {"state": state, "param_groups": copy.deepcopy(param_groups)}
