"""The training engine: `fit` runs a whole spec as setup, resume, the epoch loop and a summary.

`train_epochs` is the one epoch loop (`train_one_epoch` a pass, `end_epoch` its end) over an `Epochs`: one run
here, or a pack of seeds trained as one (shared.train.packs); the evaluation loop is `evals.evaluate`; a `Reporter`
hears progress on rank 0.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from shared.lab.results import DataInfo, EpochMetrics, EvalPoint, FitResult, RunInfo
from shared.lab.settings import settings
from shared.lab.specs import Spec
from shared.train import checkpoint, distributed, evals, precision, recipe
from shared.train.batches import (
    DevicePipeline,
    EpochPlan,
    batch_slices,
    class_order,
    permutation_rng_seed,
    rank_slice,
    spec_permutation,
)
from shared.train.data import Split, channel_stats, load_split
from shared.train.environment import environment
from shared.train.evals import Evaluation, confusion_matrix, evaluate, misclassified
from shared.train.nets import build_model, count_params
from shared.train.steps import EagerStep, GraphedStep, make_optimizer, make_scheduler

CUDNN_BENCHMARK = False  # timing algorithms costs ~2 s at start (H100, VGG) and gains ~0.02 s an epoch
# Fields a resumed run may change: they do not alter what is learned, only how or how long.
RESUMABLE_CHANGES = {"epochs", "world_size", "device", "precision", "channels_last", "test_batch_size", "log_every",
                     "sync_bn", "max_minutes", "memory_gb", "keep_checkpoints", "eval_every", "eval_samples"}


class Stopped(Exception):
    """Training stopped at a step boundary because it was asked to (a cancel)."""


class Reporter:
    """Receives progress on rank 0; the CLI draws a bar, the worker writes to the database."""

    def on_start(self, info: RunInfo) -> None: ...
    def on_step(self, epoch: int, step: int, steps: int, loss: float | None) -> None: ...
    def on_epoch(self, metrics: EpochMetrics) -> None: ...
    def on_checkpoint(self, epoch: int, path: Path, sha256: str) -> None: ...
    def on_eval(self, point: EvalPoint) -> None: ...
    def on_phase(self, phase: str) -> None: ...  # "evaluating" or "saving" at an epoch's end
    def on_done(self, run: Run) -> None: ...  # rank 0, the result summarized: the trained model and its data


@dataclass
class Pauses:
    """Evaluations within an epoch: after the step that reaches each count in `at` of the epoch's samples (all
    ranks), `run(steps done, samples done)` is called; its time is not training time."""

    at: list[int]
    run: Callable[[int, int], None]

    def take(self, steps: int, samples: int) -> float:
        """Evaluate now (`samples` reached the next count); the seconds it took."""
        t0 = time.perf_counter()
        self.run(steps, samples)
        self.at = [a for a in self.at if a > samples]
        return time.perf_counter() - t0


@dataclass
class EpochStats:
    train_loss: float | list[float]  # mean over the epoch's samples (all ranks); stacked seeds: each seed's
    samples: int  # samples trained on, all ranks together
    seconds: float


@dataclass
class Run:
    """Everything `fit` sets up for one spec on one rank."""

    spec: Spec
    world: distributed.World
    model: torch.nn.Module  # the bare model (rank 0 evaluates and saves it)
    net: torch.nn.Module  # what trains: the model, or DDP around it
    optimizer: torch.optim.Optimizer
    step: EagerStep
    scheduler: torch.optim.lr_scheduler.LRScheduler | None
    train_data: DevicePipeline
    test_data: DevicePipeline
    info: RunInfo
    plan: evals.EvalPlan = evals.EvalPlan(every=0, subset=1)  # evaluations within epochs
    eval_batch: int = 1000  # test samples per evaluation chunk (evals.eval_chunk)
    history: list[EpochMetrics] = field(default_factory=list)
    eval_seconds: float = 0.0  # evaluating on rank 0, this attempt's epochs together
    rng_state: torch.Tensor | None = None  # what checkpoints record as the RNG state; None: the live one


def train_one_epoch(step: EagerStep, plan: EpochPlan, *, batch_size: int, epoch: int,
                    world: distributed.World = distributed.World(), log_every: int = 100,
                    reporter: Reporter | None = None, should_stop: Callable[[], bool] | None = None,
                    limit: int | None = None, pauses: Pauses | None = None) -> EpochStats:
    """One pass over `plan` (its first `limit` batches when given); every rank takes its share of each global batch.

    A stacked plan goes with a step that trains S seeds at once: the losses, logged and returned, are then (S,).
    """
    step.model.train()
    device = step.data.device
    batches = plan.global_batches(batch_size, world.size)[:limit]
    loss_sum = torch.zeros(plan.loss_shape, device=device, dtype=torch.float64)  # summed on device: no per-step sync
    window, window_n, samples = loss_sum.clone(), 0, 0
    start, paused = time.perf_counter(), 0.0
    for i, gb in enumerate(batches):
        part = rank_slice(gb, world.rank, world.size)
        n = part.stop - part.start
        batch_loss = step(*plan.take(part), share=n * world.size / (gb.stop - gb.start)).double() * n
        loss_sum += batch_loss
        window += batch_loss
        window_n += n
        samples += n
        logged = None
        if (i + 1) % log_every == 0 or i + 1 == len(batches):
            logged = (window / window_n).tolist()  # mean training loss of the last `log_every` steps (each seed's)
            window.zero_()
            window_n = 0
        if reporter is not None:
            reporter.on_step(epoch, i + 1, len(batches), logged)
        if pauses is not None and pauses.at and gb.stop >= pauses.at[0]:  # gb.stop: the epoch's samples so far
            paused += pauses.take(i + 1, gb.stop)
        if should_stop is not None and _agree_to_stop(should_stop, i, world, device):
            raise Stopped(f"stopped at epoch {epoch} step {i + 1}")
    *loss_sums, total_samples = distributed.all_sum(loss_sum.flatten().tolist() + [samples], world, device)
    means = [total / max(total_samples, 1) for total in loss_sums]
    return EpochStats(means if plan.loss_shape else means[0], int(total_samples),
                      time.perf_counter() - start - paused)


def _agree_to_stop(should_stop: Callable[[], bool], step: int, world: distributed.World, device) -> bool:
    """One rank alone cannot leave the loop (the others would wait in a collective): ranks vote every 10 steps."""
    if world.size == 1:
        return should_stop()
    if step % 10:
        return False
    flag = torch.tensor([1.0 if should_stop() else 0.0], device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())


def load_data(spec: Spec, data_root: Path | None = None) -> tuple[Split, Split]:
    train = load_split(spec.dataset, True, data_root).head(spec.train_limit)
    test = load_split(spec.dataset, False, data_root).head(spec.test_limit)
    return train, test


def check_resume(spec: Spec, state: dict) -> None:
    old = state["spec"]
    new = spec.model_dump()
    # Fields added since a checkpoint was written are read at their defaults, which train as before.
    old = {k: old.get(k, Spec.model_fields[k].default) for k in new}
    # A learning-rate schedule spans the planned steps: more epochs would change its every value.
    free = RESUMABLE_CHANGES - ({"epochs"} if spec.lr_schedule != "none" else set())
    changed = sorted(k for k in new if k not in free and old[k] != new[k])
    if changed:
        raise checkpoint.CheckpointError(f"checkpoint was trained with a different spec: {', '.join(changed)} differ")


def fit(spec: Spec, *, data_root: Path | None = None, out_dir: Path | None = None, resume: Path | None = None,
        resume_sha256: str | None = None, reporter: Reporter | None = None,
        should_stop: Callable[[], bool] | None = None) -> FitResult | None:
    """Train `spec` from scratch or from a checkpoint; returns the result on rank 0 (None on other ranks)."""
    world, device = distributed.init(spec.device)
    try:
        run = setup(spec, world, device, data_root)
        if resume is not None:
            resume_from(run, resume, resume_sha256)
        reporter = (reporter or Reporter()) if world.is_main else Reporter()
        reporter.on_start(run.info)
        last = train_epochs(Epochs(run, reporter, should_stop, out_dir))
        result = summarize(run, last) if world.is_main else None
        reporter.on_done(run)  # off rank 0 the base Reporter: a no-op
    except BaseException:
        distributed.shutdown(world, clean=False)  # a peer may be gone: no barrier to wait in
        raise
    distributed.shutdown(world)
    return result


def setup(spec: Spec, world: distributed.World, device: torch.device, data_root: Path | None = None) -> Run:
    """Data on the device, the model, its optimizer and the training step, for a fresh run."""
    torch.manual_seed(spec.seed)  # same initial weights on every rank and every rerun
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = CUDNN_BENCHMARK
    train, test = load_data(spec, data_root)
    mean, std = (spec.mean, spec.std) if spec.mean is not None else channel_stats(train.images)
    _, h, w = train.shape
    perm = spec_permutation(spec, h, w)
    channels_last = precision.channels_last(spec)  # NHWC: the conv nets by default, on the CPU too
    train_data = DevicePipeline(train, device, mean, std, perm, channels_last, spec.translate, spec.padding)
    test_data = DevicePipeline(test, device, mean, std, perm, channels_last)

    model = build_model(spec.model, train.shape, len(train.classes), **spec.model_args)
    params = count_params(model)
    if world.size > 1 and spec.sync_bn:
        distributed.require_cuda_for_sync_bn(device)
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = model.to(device, memory_format=precision.memory_format(spec))
    optimizer = make_optimizer(spec, model)
    steps_per_epoch = len(batch_slices(len(train), spec.batch_size, world.size))
    scheduler = make_scheduler(spec, optimizer, total_steps(spec, steps_per_epoch))
    net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None) \
        if world.size > 1 else model
    scaler = precision.scaler(spec, device)
    # A captured graph bakes the learning rate in as a constant: a schedule trains eagerly; so does fp16 (the
    # scaler reads its inf check back to the host every step).
    graphs = settings().cuda_graphs and device.type == "cuda" and world.size == 1 and scheduler is scaler is None
    step = (GraphedStep if graphs else EagerStep)(net, optimizer, train_data, precision.autocast(spec, device),
                                                  label_smoothing=spec.label_smoothing, scheduler=scheduler,
                                                  scaler=scaler)
    step.hooks = recipe.attach(spec, model, train_data, steps_per_epoch, total_steps(spec, steps_per_epoch))

    data = DataInfo(**{k: train.info.get(k) for k in ("name", "source", "fingerprint")},
                    train_samples=len(train), test_samples=len(test), classes=train.classes, mean=mean, std=std,
                    permutation=None if perm is None else {"seed": permutation_rng_seed(spec), "head": perm[:8].tolist()})
    plan = evals.eval_plan(spec, evals.run_samples(len(train), spec.batch_size, spec.epochs, spec.steps), len(test))
    info = RunInfo(spec=spec, params=params, data=data, environment=environment(device, world),
                   steps_per_epoch=steps_per_epoch, start_epoch=0, epochs=planned_epochs(spec, steps_per_epoch),
                   total_steps=total_steps(spec, steps_per_epoch), train_samples=len(train), eval_every=plan.every,
                   eval_subset=plan.subset)
    return Run(spec, world, model, net, optimizer, step, scheduler, train_data, test_data, info, plan=plan,
               eval_batch=evals.eval_chunk(spec, device, train.shape, len(train.classes)))


def planned_epochs(spec: Spec, steps_per_epoch: int) -> int:
    """`epochs`, or as many passes as `steps` optimizer steps take (the last one cut short)."""
    return spec.epochs if spec.steps is None else -(-spec.steps // steps_per_epoch)


def total_steps(spec: Spec, steps_per_epoch: int) -> int:
    return spec.epochs * steps_per_epoch if spec.steps is None else spec.steps


def resume_from(run: Run, path: Path, sha256: str | None = None) -> None:
    """Continue a run from its checkpoint: weights, optimizer state, RNG and the epochs already done."""
    state = checkpoint.load(path, sha256)
    check_resume(run.spec, state)
    run.model.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    if run.scheduler is not None:
        run.scheduler.load_state_dict(state["scheduler"])  # check_resume made sure the run had the same schedule
    if run.step.scaler is not None and state.get("scaler"):  # fp16's loss scale; none: from fp32/bf16, starts anew
        run.step.scaler.load_state_dict(state["scaler"])
    torch.set_rng_state(state["rng"]["torch"])
    run.history = [EpochMetrics.model_validate(m) for m in state["history"]]
    run.info.start_epoch = state["epoch"]


@dataclass
class Epochs:
    """What the epoch loop trains and who hears it: one run here; a pack (`packs.PackEpochs`) is the stacked step
    of several seeds, each seed's own plan and its own epoch end."""

    run: Run  # its spec, world and facts shape the loop
    reporter: Reporter
    should_stop: Callable[[], bool] | None = None
    out_dir: Path | None = None  # where epoch checkpoints go; None: none

    @property
    def step(self) -> EagerStep:
        return self.run.step

    @cached_property
    def base(self) -> torch.Tensor | None:
        """The training set's order before each epoch's shuffle (None: the stored order)."""
        return class_order(self.run.train_data.labels) if self.run.spec.sort_by_class else None

    def plan(self, epoch: int) -> EpochPlan:
        spec, data = self.run.spec, self.run.train_data
        return EpochPlan.make(len(data), spec.seed, epoch, spec.augment, data.device, shuffle=spec.shuffle,
                              base=self.base, pad=spec.translate, flip=spec.flip)

    def pauses(self, epoch: int, limit: int) -> Pauses | None:
        """Rank 0's evaluations within `epoch` (its first `limit` steps)."""
        return pauses(self.run, self.reporter, epoch, limit)

    def end(self, epoch: int, stats: EpochStats, t0: float, last: Evaluation | None = None) -> Evaluation:
        """Rank 0 at the epoch's end (which began at `t0`; `last`: its evaluation, if a pack made it)."""
        return end_epoch(self.run, self.reporter, epoch, stats, t0, self.out_dir, last)


def train_epochs(loop: Epochs) -> Evaluation | None:
    """The epochs left to train; rank 0 evaluates and checkpoints after each. Returns the last evaluation."""
    run, last = loop.run, None
    spec, world, spe = run.spec, run.world, run.info.steps_per_epoch
    log_every = evals.log_interval(spec, total_steps(spec, spe))
    loop.step.begin(run.info.start_epoch * spe)  # the step hooks' state (lookahead, freezes) for where it starts
    for epoch in range(run.info.start_epoch + 1, planned_epochs(spec, spe) + 1):
        t0 = time.perf_counter()
        plan = loop.plan(epoch)
        limit = total_steps(spec, spe) - (epoch - 1) * spe
        stats = train_one_epoch(loop.step, plan, batch_size=spec.batch_size, epoch=epoch, world=world,
                                log_every=log_every, reporter=loop.reporter, should_stop=loop.should_stop,
                                limit=limit, pauses=loop.pauses(epoch, limit) if world.is_main else None)
        if world.is_main:
            last = loop.end(epoch, stats, t0)
        distributed.barrier(world)  # other ranks wait while rank 0 evaluates and writes
    return last


def pauses(run: Run, reporter: Reporter, epoch: int, limit: int) -> Pauses:
    """Rank 0's evaluations on the test subset within `epoch` (its first `limit` steps), per the run's plan."""
    n = len(run.train_data)
    epoch_samples = min(n, limit * run.spec.batch_size)

    def evaluate_subset(steps: int, samples: int) -> None:
        t0 = time.perf_counter()
        ev = evaluate(run.model, run.test_data, run.eval_batch, run.step.autocast, limit=run.plan.subset)
        run.model.train()  # back to training mode (BatchNorm, dropout) for the rest of the epoch
        run.eval_seconds += time.perf_counter() - t0
        reporter.on_eval(eval_point(run, epoch, steps, samples, ev, full=False))

    return Pauses(evals.due_within(run.plan, (epoch - 1) * n, epoch_samples), evaluate_subset)


def eval_point(run: Run, epoch: int, steps: int, samples: int, ev: Evaluation, full: bool) -> EvalPoint:
    """An evaluation made after `steps` steps and `samples` samples of `epoch` as a point of the run's curves."""
    n = len(run.train_data)
    seen = (epoch - 1) * n + samples
    return EvalPoint(samples_seen=seen, epoch=seen / n, step=(epoch - 1) * run.info.steps_per_epoch + steps,
                     test_loss=ev.loss, test_accuracy=ev.accuracy, test_samples=len(ev.predictions), full=full)


def end_epoch(run: Run, reporter: Reporter, epoch: int, stats: EpochStats, t0: float,
              out_dir: Path | None, last: Evaluation | None = None) -> Evaluation:
    """Rank 0 at an epoch's end: evaluate on the full test split (unless a pack did: `last`), report, checkpoint."""
    reporter.on_phase("evaluating")
    if last is None:
        t1 = time.perf_counter()
        last = evaluate(run.model, run.test_data, run.eval_batch, run.step.autocast)
        run.eval_seconds += time.perf_counter() - t1
    steps = -(-stats.samples // run.spec.batch_size)
    reporter.on_eval(eval_point(run, epoch, steps, stats.samples, last, full=True))
    metrics = EpochMetrics(epoch=epoch, train_loss=stats.train_loss, test_loss=last.loss,
                           test_accuracy=last.accuracy, train_seconds=stats.seconds,
                           seconds=time.perf_counter() - t0, samples_per_second=stats.samples / stats.seconds)
    run.history.append(metrics)
    reporter.on_epoch(metrics)
    if out_dir is not None:
        reporter.on_phase("saving")
        save_checkpoint(run, epoch, out_dir, reporter)
    return last


def save_checkpoint(run: Run, epoch: int, out_dir: Path, reporter: Reporter) -> None:
    path = checkpoint.path_for(out_dir, epoch)
    sha = checkpoint.save({"spec": run.spec.model_dump(), "epoch": epoch, "model": run.model.state_dict(),
                           "optimizer": run.optimizer.state_dict(),
                           "scheduler": run.scheduler.state_dict() if run.scheduler is not None else None,
                           "scaler": run.step.scaler.state_dict() if run.step.scaler is not None else None,
                           "history": [m.model_dump() for m in run.history], "data": run.info.data.model_dump(),
                           "rng": {"torch": torch.get_rng_state() if run.rng_state is None else run.rng_state}},
                          path)
    reporter.on_checkpoint(epoch, path, sha)
    checkpoint.prune(out_dir, epoch, run.spec.keep_checkpoints)


def summarize(run: Run, last: Evaluation | None) -> FitResult:
    """The result on rank 0, from the last evaluation (made now if a resumed run had no epoch left)."""
    if last is None:
        t1 = time.perf_counter()
        last = evaluate(run.model, run.test_data, run.eval_batch, run.step.autocast)
        run.eval_seconds += time.perf_counter() - t1
    train_seconds = sum(m.train_seconds for m in run.history)
    samples = sum(m.samples_per_second * m.train_seconds for m in run.history)
    labels = run.test_data.labels.cpu()
    last, tta = recipe.tta(run, last)  # the spec's test-time augmentation, the plain evaluation beside it
    return FitResult(tta=tta,
        spec=run.spec, params=run.info.params, epochs=len(run.history), test_accuracy=last.accuracy,
        test_loss=last.loss, train_seconds=train_seconds, eval_seconds=run.eval_seconds,
        samples_per_second=samples / train_seconds if train_seconds else 0.0, history=run.history,
        data=run.info.data, environment=run.info.environment,
        confusion=confusion_matrix(last.predictions, labels, len(run.info.data.classes)),
        misclassified=misclassified(last.predictions, labels))

