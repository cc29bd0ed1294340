"""Seeds trained together: jobs that differ only in `seed`, or in the fields a stacked step carries per member
(shared.lab.packs.PER_MEMBER: lr, weight_decay, momentum, label_smoothing), as one vectorized run (`fit_pack`,
`fit_seeds`).

The seeds' models are stacked into (S, ...) parameters (`torch.func.stack_module_state`) and called with
`vmap(functional_call(...))`: one step trains every seed on its own batch. Each seed keeps exactly what it
would have alone: its initial weights (`torch.manual_seed(seed)` then build, as `engine.setup`), its data
order and augmentation (`EpochPlan.make(n, seed, epoch, ...)`), its optimizer state (SGD momentum and Adam
act elementwise, so one fused optimizer over the stacked parameters, stepping on the sum over seeds of each
seed's mean loss, gives every seed its own update), and its own metrics, reporter, checkpoint and result.
The pack trains in the engine's own epoch loop (`engine.train_epochs`): it gives the loop its stacked step and
its members, each an `engine.Epochs` of its own run whose epoch end is the engine's.

A cancel, a Python failure or a non-finite loss ends one member only: it is masked out of the objective and
its result is the exception. BatchNorm nets stack too: each member's running statistics are its own slice of the
stacked buffers, updated in place under vmap. Convolutional nets on the CPU (where vmap's grouped convolutions are
slower than one seed after another) train one member after another through `engine.fit`. The members evaluate
together: one vmapped pass over each test chunk gives every member's logits.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import torch

from shared.lab.models import model_facts
from shared.lab.packs import PER_MEMBER, pack_key
from shared.lab.results import FitResult
from shared.lab.specs import Spec
from shared.train import engine, evals
from shared.train.batches import EpochPlan
from shared.train.distributed import World, pick_device
from shared.train.engine import Reporter, Stopped
from shared.train.nets import build_model
from shared.train.stacks import GraphedStackedStep, Stack, StackedStep, member_optimizer_state
from shared.train.steps import EagerStep, GraphedStep, make_pack_optimizer

Strategy = Literal["auto", "vmap", "sequential"]
StopFlag = Callable[[], bool]


class Diverged(ArithmeticError):
    """A member's training loss became NaN or infinite: it ends alone, the other seeds go on."""


class NoneLeft(Exception):
    """Every member has ended on its own: the pack's loop stops, with nothing left to train."""


@dataclass
class Member(engine.Epochs):
    """One seed of a pack: the engine's epochs of its own run (model copy, optimizer for checkpoints, history,
    reporter, checkpoints), trained by the pack's step; and its fate."""

    index: int = field(kw_only=True)  # position in the stack
    last: evals.Evaluation | None = field(default=None, kw_only=True)
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


# Spec fields the stacked loop does not implement, at their defaults: a spec that changes one trains its seeds
# one after another through engine.fit, which does.
STACKED_DEFAULTS = {"shuffle": True, "sort_by_class": False, "steps": None, "lr_schedule": "none",
                    "permutation": "fixed",  # per_seed: each seed's own pixels
                    "translate": 4, "padding": "zeros", "flip": "random", "bias_lr_scale": 1.0, "lookahead": False,
                    "whiten_bias_epochs": None, "tta": 0, "nesterov": False}  # the fast recipe (shared.train.recipe)


def unstackable(spec: Spec) -> list[str]:
    """The fields of `spec` that keep its seeds from being stacked."""
    # fp16: one loss scale for the stack would skip every seed's step when one seed's gradients overflow
    fp16 = ["precision"] if spec.precision == "fp16" else []
    return [k for k, default in STACKED_DEFAULTS.items() if getattr(spec, k) != default] + fp16


def pick_strategy(spec: Spec, device: torch.device) -> Literal["vmap", "sequential"]:
    """vmap where it pays: on GPUs (launch-bound; BatchNorm nets too) and for the fully connected nets on the CPU;
    not for convs on the CPU, where vmap's grouped convolutions came out 1.6-2.2x slower than the seeds one after
    another (docs/packs.md has the numbers)."""
    if unstackable(spec) or (device.type == "cpu" and model_facts(spec.model).convolutional):
        return "sequential"
    return "vmap"


def fit_seeds(spec: Spec, seeds: Sequence[int], *, data_root: Path | None = None,
              out_dirs: dict[int, Path] | None = None, reporters: dict[int, Reporter] | None = None,
              should_stop: dict[int, StopFlag] | None = None,
              strategy: Strategy = "auto") -> dict[int, FitResult | BaseException]:
    """Train `spec` once per seed; each seed's result, or the exception that ended it alone (`fit_pack`)."""
    seeds = check_seeds(seeds)
    out_dirs, reporters, should_stop = out_dirs or {}, reporters or {}, should_stop or {}
    results = fit_pack([seeded(spec, s) for s in seeds], data_root=data_root,
                       out_dirs=[out_dirs.get(s) for s in seeds], reporters=[reporters.get(s) for s in seeds],
                       should_stop=[should_stop.get(s) for s in seeds], strategy=strategy)
    return dict(zip(seeds, results, strict=True))


def fit_pack(specs: Sequence[Spec], *, data_root: Path | None = None, out_dirs: Sequence[Path | None] = (),
             reporters: Sequence[Reporter | None] = (), should_stop: Sequence[StopFlag | None] = (),
             strategy: Strategy = "auto") -> list[FitResult | BaseException]:
    """Train specs that differ only in PER_MEMBER fields as one pack; each member's result, or the exception that
    ended it alone, in order (out_dirs, reporters and should_stop are per member, in the same order).

    Raises what fails before any training (bad spec, missing data, no such device): it would fail every member.
    """
    specs = check_members(specs)
    spec, device = specs[0], pick_device(specs[0].device)
    if strategy == "auto":
        strategy = pick_strategy(spec, device)
    elif strategy == "vmap" and unstackable(spec):
        raise ValueError(f"stacked seeds do not implement {', '.join(unstackable(spec))}: use strategy sequential")
    each = lambda xs: [xs[i] if i < len(xs) else None for i in range(len(specs))]  # noqa: E731
    if strategy == "sequential":
        return fit_one_by_one(specs, data_root, each(out_dirs), each(reporters), each(should_stop))
    return Pack.setup(specs, device, data_root, each(out_dirs), each(reporters), each(should_stop)).train()


def check_seeds(seeds: Sequence[int]) -> list[int]:
    seeds = list(seeds)
    if not seeds:
        raise ValueError("no seeds given")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds repeat: {seeds}")
    return seeds


def check_members(specs: Sequence[Spec]) -> list[Spec]:
    """A pack's specs: at least one, one rank, none twice, and equal but for PER_MEMBER fields."""
    specs = list(specs)
    if not specs:
        raise ValueError("no members given")
    if specs[0].world_size != 1:
        raise ValueError("seeds train together in one process: world_size must be 1")
    dumps = [s.model_dump() for s in specs]
    for d in dumps[1:]:
        if pack_key(d) != pack_key(dumps[0]):
            differ = sorted(k for k in pack_key(d) if d[k] != dumps[0][k])
            raise ValueError(f"a pack's members may differ only in {', '.join(PER_MEMBER)}: {', '.join(differ)} differ")
    if len({repr(sorted(d.items())) for d in dumps}) != len(dumps):
        raise ValueError("a pack's members repeat: two have the same spec")
    return specs


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


def fit_one_by_one(specs: list[Spec], data_root, out_dirs, reporters,
                   should_stop) -> list[FitResult | BaseException]:
    """The fallback: `engine.fit` per member, one after another in this process."""
    results: list[FitResult | BaseException] = []
    for spec, out_dir, inner, stop in zip(specs, out_dirs, reporters, should_stop, strict=True):
        reporter = _Started(inner or Reporter())
        try:
            results.append(engine.fit(spec, data_root=data_root, out_dir=out_dir, reporter=reporter,
                                      should_stop=stop))
        except Exception as exc:  # noqa: BLE001 - one member's failure is its result
            if not reporter.started and not results:
                raise  # setup failed for the first member: it fails alike for all of them
            results.append(exc)
    return results


@dataclass
class Pack:
    """The members around one stack, one stacked optimizer and one step."""

    specs: list[Spec]
    members: list[Member]
    stack: Stack
    step: StackedStep

    @classmethod
    def setup(cls, specs: list[Spec], device: torch.device, data_root: Path | None,
              out_dirs: list, reporters: list, should_stop: list) -> "Pack":
        """engine.setup for the first member (data, pipelines, facts); every member's model built as it would be
        alone; one optimizer over the stack (per-member settings: steps.make_pack_optimizer)."""
        first = engine.setup(specs[0], World(), device, data_root)
        first.rng_state = torch.get_rng_state()
        runs = [first] + [member_run(first, s) for s in specs[1:]]
        members = [Member(run, reporters[i] or Reporter(), should_stop[i], out_dirs[i], index=i)
                   for i, run in enumerate(runs)]
        stack = Stack([r.model for r in runs], [s.label_smoothing for s in specs])
        optimizer = make_pack_optimizer(specs, stack.params.values())
        # setup chose CUDA graphs for this device; a per-member optimizer's step holds Python numbers: eager
        graphs = first.step.__class__ is GraphedStep and isinstance(optimizer, type(first.optimizer))
        step = (GraphedStackedStep if graphs else StackedStep)(stack, optimizer, first.train_data, first.step.autocast)
        return cls(specs, members, stack, step)

    def train(self) -> list[FitResult | BaseException]:
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
        return [m.error if m.error is not None else self.result(m) for m in self.members]

    def evaluate(self, limit: int | None = None) -> tuple[list[evals.Evaluation], float]:
        """Every member's evaluation from one vmapped pass per test chunk, and the seconds it took."""
        run, t0 = self.members[0].run, time.perf_counter()
        chunk = max(1, run.eval_batch // self.stack.size)  # eval_chunk sized for one model: S of them share it
        out = evals.evaluate_stacked(self.stack.logits, run.test_data, chunk, self.step.autocast, limit)
        return out, time.perf_counter() - t0

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
        """Every member evaluated at once, then each living member's own epoch end; the pack stops when none is
        left. The shared evaluation's time counts as each member's (as the shared training time does)."""
        evaluations, seconds = self.evaluate()
        for m in self.alive():
            m.run.eval_seconds += seconds
            m.call(self.finish_epoch, m, epoch, stats, evaluations[m.index], seconds)
        self.sync_alive()
        if not self.alive():
            raise NoneLeft

    def finish_epoch(self, m: Member, epoch: int, stats: engine.EpochStats, ev: evals.Evaluation,
                     eval_seconds: float) -> None:
        """The member's engine epoch end (metrics, report, checkpoint), from its slice of the stack."""
        train_loss = stats.train_loss[m.index]
        if not math.isfinite(train_loss):
            raise Diverged(f"seed {m.seed}: training loss is {train_loss} at epoch {epoch}")
        t0 = time.perf_counter() - stats.seconds - eval_seconds  # its epoch: the shared training and evaluation
        self.copy_out(m)
        m.last = m.end(epoch, replace(stats, train_loss=train_loss), t0, ev)

    def evaluate_subset(self, epoch: int, steps: int, samples: int) -> None:
        """A curve point for every living member: the first `subset` test images, all members in one pass."""
        evaluations, seconds = self.evaluate(self.members[0].run.plan.subset)
        for m in self.alive():
            m.run.eval_seconds += seconds
            point = engine.eval_point(m.run, epoch, steps, samples, evaluations[m.index], full=False)
            m.call(m.reporter.on_eval, point)

    @torch.no_grad()
    def copy_out(self, m: Member) -> None:
        """The member's weights and optimizer state from the stack into its own model and optimizer."""
        for name, p in m.run.model.named_parameters():
            p.copy_(self.stack.params[name][m.index])
        for name, b in m.run.model.named_buffers():
            b.copy_(self.stack.buffers[name][m.index])
        if m.out_dir is not None:  # only checkpoints need it
            own = m.run.optimizer.state_dict()["param_groups"]  # its own lr, weight_decay, momentum
            m.run.optimizer.load_state_dict(member_optimizer_state(self.step.optimizer.state_dict(), m.index, own))

    def result(self, m: Member) -> FitResult | BaseException:
        try:
            result = engine.summarize(m.run, m.last)
            m.reporter.on_done(m.run)
            return result
        except Exception as exc:  # noqa: BLE001 - one member's failure is its result
            return exc


class PackEpochs(engine.Epochs):
    """The pack as the engine's epoch loop sees it: the stacked step over every member's plan, the members' curve
    points and epoch ends, each evaluated together from the stack."""

    def __init__(self, pack: Pack):
        super().__init__(pack.members[0].run, _EachMember(pack))  # the members' runs differ only in PER_MEMBER
        self.pack = pack

    @property
    def step(self) -> StackedStep:
        return self.pack.step

    def plan(self, epoch: int) -> EpochPlan:
        return EpochPlan.stack([m.plan(epoch) for m in self.pack.members])

    def pauses(self, epoch: int, limit: int) -> engine.Pauses:
        """The first member's schedule (every member's: they share the plan), evaluated for all members at once."""
        due = engine.pauses(self.run, self.reporter, epoch, limit).at
        return engine.Pauses(due, lambda steps, samples: self.pack.evaluate_subset(epoch, steps, samples))

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
    return engine.Run(spec, first.world, model, model, optimizer, step, None, data, first.test_data, info,
                      plan=first.plan, eval_batch=first.eval_batch, rng_state=rng)
