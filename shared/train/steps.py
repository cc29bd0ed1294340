"""One training step (batch, forward, backward, update), eager or replayed as a CUDA graph; the optimizer and
learning-rate schedule it updates with."""

from __future__ import annotations

import contextlib
import logging

import torch
import torch.nn.functional as F

from shared.lab.specs import Spec
from shared.train.batches import DevicePipeline

log = logging.getLogger(__name__)


class EagerStep:
    """Assemble the batch for sample indices `idx` on the device, then forward, backward and update."""

    def __init__(self, model, optimizer, data: DevicePipeline, autocast=contextlib.nullcontext, *,
                 label_smoothing: float = 0.0, scheduler=None, scaler: torch.amp.GradScaler | None = None):
        self.model, self.optimizer, self.data, self.autocast = model, optimizer, data, autocast
        self.scaler = scaler  # fp16's loss scaler (shared.train.precision); None: the gradients as they come
        self.label_smoothing = label_smoothing  # training loss only: evaluation stays plain cross-entropy
        self.scheduler = scheduler  # stepped after every optimizer step (None: a constant learning rate)
        self.hooks: list = []  # called with the optimizer steps done after each (lookahead, a layer's freeze)
        self.done = 0

    def begin(self, done: int) -> None:
        """Training starts (or resumes) with `done` optimizer steps behind it: the hooks set their state."""
        self.done = done
        for hook in self.hooks:
            hook.begin(done)

    def criterion(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The lab's log_softmax + nll_loss in one, with optional label smoothing; fp32 under any autocast."""
        return F.cross_entropy(logits.float(), y, label_smoothing=self.label_smoothing)

    def __call__(self, idx, offsets=None, flips=None, share: float = 1.0) -> torch.Tensor:
        """Returns the batch's mean loss (a 0-d tensor still on the device: no sync)."""
        loss = self.forward(idx, offsets, flips)
        self.optimizer.zero_grad(set_to_none=True)
        objective = self.objective(loss)
        # DDP averages gradients over ranks; `share` (a rank's part of the global batch, x world size)
        # keeps that average equal to the global batch's mean when ranks get unequal parts.
        objective = objective * share if share != 1.0 else objective
        if self.scaler is None:
            objective.backward()
            self.optimizer.step()
        else:  # backward on loss x scale (fp16 gradients kept above underflow), unscaled before the update
            self.scaler.scale(objective).backward()
            self.scaler.step(self.optimizer)  # skipped when a gradient is inf/NaN: the scale halves instead
            self.scaler.update()
        if self.scheduler is not None:
            self.scheduler.step()
        self.done += 1
        for hook in self.hooks:
            hook(self.done)
        return loss.detach()

    def forward(self, idx, offsets=None, flips=None) -> torch.Tensor:
        """The batch's loss as reported (a subclass may return one loss per stacked model)."""
        x, y = self.data.batch(idx, offsets, flips)
        with self.autocast():
            return self.criterion(self.model(x), y)  # logits in

    def objective(self, loss: torch.Tensor) -> torch.Tensor:
        """The scalar to differentiate: the loss itself here."""
        return loss


class GraphedStep(EagerStep):
    """The same step captured once as a CUDA graph and replayed.

    At batch 128 the lab's VGG is bound by kernel launches (~150 per step from Python), not by the GPU;
    one graph replay launches them all at once. Batches of another size (an epoch's last) run eagerly.
    """

    WARMUP = 3  # eager steps first: cuDNN picks its algorithms and lazy state is built before capture

    def __init__(self, model, optimizer, data, autocast=contextlib.nullcontext, **kw):
        super().__init__(model, optimizer, data, autocast, **kw)
        self.graph = None
        self.static = None  # the captured inputs: sample indices, crop offsets, flips
        self.loss = None
        self.warm = 0
        self.disabled = False

    def __call__(self, idx, offsets=None, flips=None, share: float = 1.0) -> torch.Tensor:
        inputs = (idx, offsets, flips)
        if self.disabled or self.hooks or share != 1.0 or (self.static is not None and len(idx) != len(self.static[0])):
            return super().__call__(*inputs, share=share)
        if self.static is None:
            self.static = tuple(None if t is None else t.clone() for t in inputs)
        else:
            for dst, src in zip(self.static, inputs, strict=False):
                if dst is not None:
                    dst.copy_(src)
        if self.graph is not None:
            self.graph.replay()
            return self.loss
        if self.warm < self.WARMUP:
            self.warm += 1
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                loss = super().__call__(*self.static)
            torch.cuda.current_stream().wait_stream(side)
            return loss
        return self._capture()

    def _capture(self) -> torch.Tensor:
        graph = torch.cuda.CUDAGraph()
        self.optimizer.zero_grad(set_to_none=True)  # gradients are then allocated in the graph's memory pool
        try:
            with torch.cuda.graph(graph):
                loss = self.forward(*self.static)
                self.objective(loss).backward()
                self.optimizer.step()
        except Exception as exc:  # noqa: BLE001 - never fail a run for want of a graph: go on eagerly
            log.warning("CUDA graph capture failed, training eagerly: %s", exc)
            self.disabled = True
            return super().__call__(*self.static)
        self.graph, self.loss = graph, loss.detach()
        graph.replay()  # capture only records: this runs the step for the current batch
        return self.loss


def param_groups(spec: Spec, model: torch.nn.Module) -> list:
    """The model's parameters; with `bias_lr_scale` the BatchNorm biases as their own group at lr x scale and
    weight decay / scale (the same decay per step: airbench94's BatchNorm bias rate)."""
    if spec.bias_lr_scale == 1.0:
        return list(model.parameters())
    biases = {id(m.bias): m.bias for m in model.modules()
              if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.bias is not None}
    rest = [p for p in model.parameters() if id(p) not in biases]
    return [{"params": rest}, {"params": list(biases.values()), "lr": spec.lr * spec.bias_lr_scale,
                               "weight_decay": spec.weight_decay / spec.bias_lr_scale}]


def make_optimizer(spec: Spec, params) -> torch.optim.Optimizer:
    """The spec's optimizer over `params` (a model: its parameter groups, `param_groups`)."""
    params = param_groups(spec, params) if isinstance(params, torch.nn.Module) else list(params)
    first = params[0]["params"][0] if params and isinstance(params[0], dict) else (params[0] if params else None)
    # capturable keeps Adam's step count on the GPU, so a CUDA graph can hold optimizer.step()
    cuda = {"capturable": True} if first is not None and first.is_cuda else {}
    # fused: one kernel over all parameters instead of a Python loop of small ops, on CPU and CUDA alike
    # (Adam on VGG's 9.2M parameters on CPU: ~2.4 ms a step instead of ~24 ms; SGD on the MNIST nets ~2x).
    if spec.optimizer == "sgd":
        return torch.optim.SGD(params, lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay,
                               nesterov=spec.nesterov, fused=True)
    return torch.optim.Adam(params, lr=spec.lr, weight_decay=spec.weight_decay, fused=True, **cuda)


def make_scheduler(spec: Spec, optimizer: torch.optim.Optimizer, steps: int):
    """The spec's learning-rate schedule over `steps` optimizer steps, stepped after each; None for a constant lr."""
    if spec.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    if spec.lr_schedule == "triangle":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: triangle(i, steps))
    if spec.lr_schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=spec.lr, total_steps=steps)
    return None


def per_member(values, like: torch.Tensor) -> torch.Tensor:
    """Member values (S,) shaped to broadcast over a stacked parameter (S, ...)."""
    return torch.as_tensor(values, dtype=like.dtype, device=like.device).view(-1, *[1] * (like.dim() - 1))


class MemberSGD(torch.optim.Optimizer):
    """SGD (momentum, L2 weight decay) over stacked (S, ...) parameters with each member's own lr, weight_decay and
    momentum: torch's SGD update per member, its state laid out as torch's (`momentum_buffer`)."""

    def __init__(self, params, specs: list[Spec]):
        super().__init__(params, {"lr": specs[0].lr})
        self.hyper = {k: [getattr(s, k) for s in specs] for k in ("lr", "weight_decay", "momentum")}

    @torch.no_grad()
    def step(self, closure=None):
        for p in self.param_groups[0]["params"]:
            if p.grad is None:
                continue
            lr, wd, mom = (per_member(self.hyper[k], p) for k in ("lr", "weight_decay", "momentum"))
            d = p.grad + wd * p
            buf = self.state[p].get("momentum_buffer")
            buf = d.clone() if buf is None else buf.mul_(mom).add_(d)  # first step: the buffer is d, as torch's
            self.state[p]["momentum_buffer"] = buf
            p.sub_(lr * buf)


class MemberAdam(torch.optim.Optimizer):
    """Adam (L2 weight decay) over stacked (S, ...) parameters with each member's own lr and weight_decay: torch's
    Adam update per member, its state laid out as torch's (`step`, shared, 0-d; `exp_avg`, `exp_avg_sq`)."""

    BETAS, EPS = (0.9, 0.999), 1e-8  # torch's defaults, as make_optimizer uses

    def __init__(self, params, specs: list[Spec]):
        super().__init__(params, {"lr": specs[0].lr})
        self.hyper = {k: [getattr(s, k) for s in specs] for k in ("lr", "weight_decay")}
        self.steps = 0

    @torch.no_grad()
    def step(self, closure=None):
        b1, b2 = self.BETAS
        for p in self.param_groups[0]["params"]:
            if p.grad is None:
                continue
            st = self.state[p]
            if not st:
                st.update(step=torch.tensor(0.0), exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p))
            st["step"] += 1
            t = self.steps + 1  # the same count as st["step"], without a device sync
            lr, wd = per_member(self.hyper["lr"], p), per_member(self.hyper["weight_decay"], p)
            g = p.grad + wd * p
            st["exp_avg"].lerp_(g, 1 - b1)
            st["exp_avg_sq"].mul_(b2).addcmul_(g, g, value=1 - b2)
            denom = (st["exp_avg_sq"].sqrt() / (1 - b2 ** t) ** 0.5).add_(self.EPS)
            p.sub_(lr / (1 - b1 ** t) * st["exp_avg"] / denom)
        self.steps += 1


def make_pack_optimizer(specs: list[Spec], params) -> torch.optim.Optimizer:
    """One optimizer over a pack's stacked parameters: the fused one where every member has the same settings,
    else a per-member one (which steps eagerly: its bias corrections and member values are Python numbers)."""
    fields = ("lr", "weight_decay") + (("momentum",) if specs[0].optimizer == "sgd" else ())
    if all(getattr(s, k) == getattr(specs[0], k) for s in specs for k in fields):
        return make_optimizer(specs[0], params)
    return (MemberSGD if specs[0].optimizer == "sgd" else MemberAdam)(list(params), specs)


TRIANGLE = (0.2, 0.23, 0.07)  # airbench94's: lr x 0.2 at the start, x 1 at 23% of the steps, x 0.07 at the end


def triangle(i: int, steps: int) -> float:
    """The triangular schedule's lr factor after `i` of `steps` optimizer steps."""
    start, peak, end = TRIANGLE
    top = max(1, int(peak * steps))
    if i <= top:
        return start + (1 - start) * i / top
    return 1 + (end - 1) * min(1.0, (i - top) / max(1, steps - top))
