"""Seeds trained together: jobs that differ only in `seed` as one vectorized run (`fit_seeds`).

The seeds' models are stacked into (S, ...) parameters (`torch.func.stack_module_state`) and called with
`vmap(functional_call(...))`: one step trains every seed on its own batch. Each seed keeps exactly what it
would have alone: its initial weights (`torch.manual_seed(seed)` then build, as `engine.setup`), its data
order and augmentation (`EpochPlan.make(n, seed, epoch, ...)`), its optimizer state (SGD momentum and Adam
act elementwise, so one fused optimizer over the stacked parameters, stepping on the sum over seeds of each
seed's mean loss, gives every seed its own update), and its own metrics, reporter, checkpoint and result.
The pack trains in the engine's own epoch loop (`engine.train_epochs`): it gives the loop its stacked step and
its members, each an `engine.Epochs` of its own run whose epoch end is the engine's.

A cancel, a Python failure or a non-finite loss ends one member only: it is masked out of the objective and
its result is the exception. Nets with BatchNorm, and convolutional nets on the CPU (where vmap's grouped
convolutions are slower than one seed after another), train one seed after another through `engine.fit`.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state, vmap

from shared.lab.models import model_facts
from shared.lab.results import FitResult
from shared.lab.specs import Spec
from shared.train import engine
from shared.train.batches import EpochPlan
from shared.train.distributed import World, pick_device
from shared.train.engine import Reporter, Stopped
from shared.train.nets import build_model
from shared.train.steps import EagerStep, GraphedStep

Strategy = Literal["auto", "vmap", "sequential"]
StopFlag = Callable[[], bool]


class Diverged(ArithmeticError):
    """A member's training loss became NaN or infinite: it ends alone, the other seeds go on."""


class Stack:
    """S models of one architecture as stacked (S, ...) parameters and buffers, called through vmap."""

    def __init__(self, models: Sequence[torch.nn.Module]):
        self.params, self.buffers = stack_module_state(list(models))  # new leaves, (S, ...) each
        self.base = copy.deepcopy(models[0]).to("meta").train()  # the architecture only, no storage
        self.size = len(models)

    def train(self) -> None:
        """Training mode, as the epoch loop sets before every epoch (the members evaluate on their own models)."""
        self.base.train()

    def losses(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Each seed's mean cross-entropy (S,) for its own batch: x (S, B, C, H, W), y (S, B)."""

        def one(params, buffers, xs, ys):
            return F.cross_entropy(functional_call(self.base, (params, buffers), (xs,)), ys)

        return vmap(one)(self.params, self.buffers, x, y)


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


class NoneLeft(Exception):
    """Every member has ended on its own: the pack's loop stops, with nothing left to train."""


@dataclass
class Member(engine.Epochs):
    """One seed of a pack: the engine's epochs of its own run (model copy, optimizer for checkpoints, history,
    reporter, checkpoints), trained by the pack's step; and its fate."""

    index: int = field(kw_only=True)  # position in the stack
    last: engine.Evaluation | None = field(default=None, kw_only=True)
    error: BaseException | None = field(default=None, kw_only=True)

    @property
    def seed(self) -> int:
        return self.run.spec.seed

    def call(self, fn: Callable, *args) -> None:
        """Run a member's own work (reporting, evaluating, saving); a failure ends this member only."""
        if self.error is None:
            try:
                fn(*args)
            except Exception as exc:  # noqa: BLE001 - any failure of one member is that member's result
                self.error = exc


def seeded(spec: Spec, seed: int) -> Spec:
    return spec.model_copy(update={"seed": seed})


def has_batchnorm(spec: Spec) -> bool:
    """Whether the spec's net has BatchNorm (built on the meta device: no memory, no RNG draws)."""
    try:
        with torch.device("meta"):
            model = build_model(spec.model, (3, 224, 224), 10, **spec.model_args)
    except (ValueError, RuntimeError):
        return False  # a bad spec: the vectorized setup raises the real error
    return any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())


# Spec fields the stacked loop does not implement, at their defaults: a spec that changes one trains its seeds
# one after another through engine.fit, which does.
STACKED_DEFAULTS = {"shuffle": True, "sort_by_class": False, "steps": None, "lr_schedule": "none",
                    "label_smoothing": 0.0, "permutation": "fixed",  # per_seed: each seed's own pixels
                    "translate": 4, "padding": "zeros", "flip": "random", "bias_lr_scale": 1.0, "lookahead": False,
                    "whiten_bias_epochs": None, "tta": 0}  # the fast recipe's ingredients (shared.train.recipe)


def unstackable(spec: Spec) -> list[str]:
    """The fields of `spec` that keep its seeds from being stacked."""
    return [k for k, default in STACKED_DEFAULTS.items() if getattr(spec, k) != default]


def pick_strategy(spec: Spec, device: torch.device) -> Literal["vmap", "sequential"]:
    """vmap where it pays: on GPUs (launch-bound) and for the fully connected nets on the CPU; not with
    BatchNorm (running stats), nor for convs on the CPU, where vmap's grouped convolutions came out 1.6-2.2x
    slower than the seeds one after another (docs/packs.md has the numbers)."""
    if unstackable(spec) or has_batchnorm(spec) or (device.type == "cpu" and model_facts(spec.model).convolutional):
        return "sequential"
    return "vmap"


def fit_seeds(spec: Spec, seeds: Sequence[int], *, data_root: Path | None = None,
              out_dirs: dict[int, Path] | None = None, reporters: dict[int, Reporter] | None = None,
              should_stop: dict[int, StopFlag] | None = None,
              strategy: Strategy = "auto") -> dict[int, FitResult | BaseException]:
    """Train `spec` once per seed; each seed's result, or the exception that ended it alone.

    Raises what fails before any training (bad spec, missing data, no such device): it would fail every seed.
    """
    seeds = check_seeds(seeds)
    if spec.world_size != 1:
        raise ValueError("seeds train together in one process: world_size must be 1")
    out_dirs, reporters, should_stop = out_dirs or {}, reporters or {}, should_stop or {}
    device = pick_device(spec.device)
    if strategy == "auto":
        strategy = pick_strategy(spec, device)
    elif strategy == "vmap" and unstackable(spec):
        raise ValueError(f"stacked seeds do not implement {', '.join(unstackable(spec))}: use strategy sequential")
    if strategy == "sequential":
        return fit_one_by_one(spec, seeds, data_root, out_dirs, reporters, should_stop)
    pack = Pack.setup(spec, seeds, device, data_root, out_dirs, reporters, should_stop)
    return pack.train()


def check_seeds(seeds: Sequence[int]) -> list[int]:
    seeds = list(seeds)
    if not seeds:
        raise ValueError("no seeds given")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds repeat: {seeds}")
    return seeds


class _Started(Reporter):
    """Passes everything on to a reporter, noting whether training started (setup is over)."""

    def __init__(self, inner: Reporter):
        self.inner, self.started = inner, False

    def on_start(self, info):
        self.started = True
        self.inner.on_start(info)

    def on_step(self, *a):
        self.inner.on_step(*a)

    def on_epoch(self, m):
        self.inner.on_epoch(m)

    def on_checkpoint(self, *a):
        self.inner.on_checkpoint(*a)

    def on_eval(self, point):
        self.inner.on_eval(point)

    def on_phase(self, phase):
        self.inner.on_phase(phase)

    def on_done(self, run):
        self.inner.on_done(run)


def fit_one_by_one(spec: Spec, seeds: list[int], data_root, out_dirs, reporters,
                   should_stop) -> dict[int, FitResult | BaseException]:
    """The fallback: `engine.fit` per seed, one after another in this process."""
    results: dict[int, FitResult | BaseException] = {}
    for seed in seeds:
        reporter = _Started(reporters.get(seed) or Reporter())
        try:
            results[seed] = engine.fit(seeded(spec, seed), data_root=data_root, out_dir=out_dirs.get(seed),
                                       reporter=reporter, should_stop=should_stop.get(seed))
        except Exception as exc:  # noqa: BLE001 - one seed's failure is its result
            if not reporter.started and not results:
                raise  # setup failed for the first seed: it fails alike for all of them
            results[seed] = exc
    return results


@dataclass
class Pack:
    """The seeds' members around one stack, one stacked optimizer and one step."""

    spec: Spec
    members: list[Member]
    stack: Stack
    step: StackedStep

    @classmethod
    def setup(cls, spec: Spec, seeds: list[int], device: torch.device, data_root: Path | None,
              out_dirs: dict, reporters: dict, should_stop: dict) -> "Pack":
        """engine.setup for the first seed (data, pipelines, facts); every seed's model built as it would be alone."""
        first = engine.setup(seeded(spec, seeds[0]), World(), device, data_root)
        first.rng_state = torch.get_rng_state()
        runs = [first] + [member_run(first, seeded(spec, s)) for s in seeds[1:]]
        members = [Member(run, reporters.get(s) or Reporter(), should_stop.get(s), out_dirs.get(s), index=i)
                   for i, (s, run) in enumerate(zip(seeds, runs, strict=True))]
        stack = Stack([r.model for r in runs])
        optimizer = engine.make_optimizer(spec, stack.params.values())
        graphs = first.step.__class__ is GraphedStep  # setup chose CUDA graphs for this device
        step = (GraphedStackedStep if graphs else StackedStep)(stack, optimizer, first.train_data, first.step.autocast)
        return cls(spec, members, stack, step)

    def train(self) -> dict[int, FitResult | BaseException]:
        for m in self.members:
            m.call(m.reporter.on_start, m.run.info)
        self.sync_alive()
        try:
            if self.alive():
                engine.train_epochs(PackEpochs(self))
        except NoneLeft:
            pass  # every member ended on its own (its error is its result)
        except Exception as exc:  # noqa: BLE001 - the shared step failed: every member still training ends
            for m in self.alive():
                m.error = exc
        return {m.seed: m.error if m.error is not None else self.result(m) for m in self.members}

    def alive(self) -> list[Member]:
        return [m for m in self.members if m.error is None]

    def sync_alive(self) -> None:
        """Mask ended members out of the objective (a (S,) bool on the device, updated in place)."""
        dead = [m.index for m in self.members if m.error is not None]
        if dead:
            self.step.alive[dead] = False

    def after_step(self, epoch: int, step: int, steps: int, logged: list[float] | None) -> None:
        """Each member hears its step, may have diverged, and may be asked to stop."""
        changed = False
        for m in self.alive():
            loss = None if logged is None else logged[m.index]
            if loss is not None and not math.isfinite(loss):
                m.error = Diverged(f"seed {m.seed}: training loss is {loss} at epoch {epoch} (by step {step})")
            m.call(m.reporter.on_step, epoch, step, steps, loss)
            if m.error is None and m.should_stop is not None:
                m.call(_stop_if_asked, m.should_stop, epoch, step)
            changed |= m.error is not None
        if changed:
            self.sync_alive()
            if not self.alive():
                raise NoneLeft

    def end_epoch(self, epoch: int, stats: engine.EpochStats) -> None:
        """Every living member's own epoch end; the pack stops when none is left."""
        for m in self.alive():
            m.call(self.finish_epoch, m, epoch, stats)
        self.sync_alive()
        if not self.alive():
            raise NoneLeft

    def finish_epoch(self, m: Member, epoch: int, stats: engine.EpochStats) -> None:
        """The member's engine epoch end (evaluation, metrics, report, checkpoint), from its slice of the stack."""
        train_loss = stats.train_loss[m.index]
        if not math.isfinite(train_loss):
            raise Diverged(f"seed {m.seed}: training loss is {train_loss} at epoch {epoch}")
        t0 = time.perf_counter() - stats.seconds  # a member's epoch: the shared training, then its own evaluation
        self.copy_out(m)
        m.last = m.end(epoch, replace(stats, train_loss=train_loss), t0)

    @torch.no_grad()
    def copy_out(self, m: Member) -> None:
        """The member's weights and optimizer state from the stack into its own model and optimizer."""
        for name, p in m.run.model.named_parameters():
            p.copy_(self.stack.params[name][m.index])
        for name, b in m.run.model.named_buffers():
            b.copy_(self.stack.buffers[name][m.index])
        if m.out_dir is not None:  # only checkpoints need it
            m.run.optimizer.load_state_dict(member_optimizer_state(self.step.optimizer.state_dict(), m.index))

    def result(self, m: Member) -> FitResult | BaseException:
        try:
            result = engine.summarize(m.run, m.last)
            m.reporter.on_done(m.run)
            return result
        except Exception as exc:  # noqa: BLE001 - one member's failure is its result
            return exc


class PackEpochs(engine.Epochs):
    """The pack as the engine's epoch loop sees it: the stacked step over every seed's plan, each living member's
    own epoch end, and no evaluations within epochs (the members' weights are in the stack until copied out)."""

    def __init__(self, pack: Pack):
        super().__init__(pack.members[0].run, _EachMember(pack))  # the members' runs differ only in the seed
        self.pack = pack

    @property
    def step(self) -> StackedStep:
        return self.pack.step

    def plan(self, epoch: int) -> EpochPlan:
        return EpochPlan.stack([m.plan(epoch) for m in self.pack.members])

    def pauses(self, epoch: int, limit: int) -> None:
        return None

    def end(self, epoch: int, stats: engine.EpochStats, t0: float) -> None:
        self.pack.end_epoch(epoch, stats)


class _EachMember(Reporter):
    """The loop's reporter for a pack: each living member hears its own step (its entry of the (S,) losses)."""

    def __init__(self, pack: Pack):
        self.pack = pack

    def on_step(self, epoch: int, step: int, steps: int, loss: list[float] | None) -> None:
        self.pack.after_step(epoch, step, steps, loss)


def _stop_if_asked(should_stop: StopFlag, epoch: int, step: int) -> None:
    if should_stop():
        raise Stopped(f"stopped at epoch {epoch} step {step}")


def member_run(first: engine.Run, spec: Spec) -> engine.Run:
    """Another seed's run beside the first: its own model, initialized as `engine.setup` would, and optimizer."""
    data = first.train_data
    torch.manual_seed(spec.seed)
    model = build_model(spec.model, tuple(data.images.shape[1:]), len(first.info.data.classes), **spec.model_args)
    rng = torch.get_rng_state()  # as a run of this seed alone would checkpoint it
    model = model.to(data.device, memory_format=torch.channels_last if data.channels_last else torch.contiguous_format)
    optimizer = engine.make_optimizer(spec, model.parameters())
    step = EagerStep(model, optimizer, data, first.step.autocast)  # never trains: holds the autocast for evaluate
    info = first.info.model_copy(update={"spec": spec})
    return engine.Run(spec, first.world, model, model, optimizer, step, None, data, first.test_data, info, rng_state=rng)


def member_optimizer_state(stacked: dict, index: int) -> dict:
    """One member's slice of a stacked optimizer's state_dict, laid out as its own optimizer's would be."""

    def pick(v):
        # Per-element state is (S, ...); Adam's step count is 0-d and shared. Cloned: a view would save all seeds.
        return v[index].clone() if isinstance(v, torch.Tensor) and v.dim() > 0 else v

    state = {k: {name: pick(v) for name, v in s.items()} for k, s in stacked["state"].items()}
    return {"state": state, "param_groups": copy.deepcopy(stacked["param_groups"])}
