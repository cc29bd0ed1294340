"""`cnnlab train`: train a preset locally with a progress bar; with --server, record the run in the service."""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

from pydantic import TypeAdapter, ValidationError
from tqdm import tqdm

from shared.lab.results import EpochMetrics, FitResult, RunInfo, RunSummary
from shared.lab.runs import LocalRun, StepPoint, Tags
from shared.lab.seeds import parse_seeds
from shared.lab.settings import settings
from shared.lab.specs import Spec, SpecError, parse_assignments, resolve_checked
from shared.train.checkpoint import CheckpointError
from shared.train.data import DataError
from shared.train.distributed import DeviceUnavailable, pick_device, require_cuda_for_sync_bn, require_gpus
from shared.train.engine import Reporter, Stopped, fit
from shared.train.launch import torchrun_command


class BarReporter(Reporter):
    """A tqdm bar per epoch on stderr; stdout stays free for the final JSON line."""

    def __init__(self):
        self.bar = None
        self.last_checkpoint: Path | None = None
        self.steps: list[StepPoint] = []  # the logged training losses, for a run recorded in the service

    def on_start(self, info: RunInfo) -> None:
        d = info.data
        print(f"{info.spec.model} ({info.params:,} params) on {d.name}: "
              f"{d.train_samples:,} train / {d.test_samples:,} test, {info.environment.device}", file=sys.stderr)

    def on_step(self, epoch, step, steps, loss):
        if self.bar is None:
            self.bar = tqdm(total=steps, desc=f"epoch {epoch}", unit="step", file=sys.stderr, leave=True)
        self.bar.update(1)
        if loss is not None:
            self.bar.set_postfix(loss=f"{loss:.4f}")
            self.steps.append(StepPoint(epoch=epoch, step=step, global_step=(epoch - 1) * steps + step, loss=loss))

    def on_epoch(self, m: EpochMetrics) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        print(f"epoch {m.epoch}: train loss {m.train_loss:.4f}, test loss {m.test_loss:.4f}, "
              f"accuracy {m.test_accuracy:.2%}, {m.samples_per_second:,.0f} samples/s", file=sys.stderr)

    def on_checkpoint(self, epoch, path, sha256):
        self.last_checkpoint = path


SUMMARY_FIELDS = {"spec", "params", "test_accuracy", "test_loss", "epochs", "train_seconds", "eval_seconds",
                  "samples_per_second", "data", "environment"}


def summary(preset: str, result: FitResult, checkpoint: Path | None) -> dict:
    """The one JSON line `cnnlab train` prints."""
    return {"preset": preset, "checkpoint": str(checkpoint) if checkpoint else None,
            **result.model_dump(mode="json", include=SUMMARY_FIELDS)}


def launch_ranks(spec: Spec) -> int:
    """Several ranks: run this same command under torchrun, one process per rank (each CUDA rank on its own GPU)."""
    require_gpus(spec.device, spec.world_size)
    if spec.sync_bn:
        require_cuda_for_sync_bn(pick_device(spec.device))
    return subprocess.call(torchrun_command(spec.world_size, "-m", "shared.cli", *sys.argv[1:]))


def train(args: argparse.Namespace) -> int:
    if args.download:
        os.environ["CNNLAB_DOWNLOAD"] = "1"  # the data layer reads it through shared.lab.settings
    stop = {"asked": False}
    # Ctrl-C ends the run at the next step boundary; the last epoch's checkpoint stays usable.
    signal.signal(signal.SIGINT, lambda *_: stop.__setitem__("asked", True))
    reporter = BarReporter()
    recording = bool(args.server or args.record)
    started = datetime.now(UTC)
    try:
        resolved = resolve_checked(args.preset, parse_assignments(args.overrides))
        for w in resolved.warnings:  # the API returns the same warnings beside the job
            print(f"cnnlab: warning: {w.field}: {w.message}", file=sys.stderr)
        spec = resolved.spec
        out = args.out or settings().var_dir / "runs" / args.preset
        if recording:
            check_recordable(args)
        if args.seeds is not None:
            return train_seeds(args, spec, out, lambda: stop["asked"])
        if spec.world_size > 1 and "WORLD_SIZE" not in os.environ:
            return launch_ranks(spec)
        result = fit(spec, data_root=args.data_dir, out_dir=out, resume=args.resume, reporter=reporter,
                     should_stop=lambda: stop["asked"])
    except (SpecError, DataError, CheckpointError, DeviceUnavailable, ValueError, OSError) as exc:
        print(f"cnnlab: error: {exc}", file=sys.stderr)
        return 2
    except Stopped as exc:
        print(f"cnnlab: {exc}", file=sys.stderr)
        return 130
    if result is None:  # ranks other than 0 report nothing
        return 0
    line = summary(args.preset, result, reporter.last_checkpoint)
    if recording:
        line["job"] = record(args, result, reporter.steps, started, out)
    print(json.dumps(line))
    return 3 if recording and line["job"] is None else 0


def check_recordable(args: argparse.Namespace) -> None:
    """Refuse, before training, what could not be recorded."""
    if args.seeds is not None:
        raise ValueError("--server records one run: train the seeds one by one (--set seed=N), or submit a sweep")
    try:
        TypeAdapter(Tags).validate_python(args.tags)
    except ValidationError as exc:
        raise ValueError(f"--tag: {exc.errors()[0]['msg']}") from None


def record(args: argparse.Namespace, result: FitResult, steps: list[StepPoint], started: datetime,
           out: Path) -> dict | None:
    """POST the finished run to the service (POST /runs); {id, url} of its job, or None, the record saved in OUT."""
    from shared.cli.client import ServiceError  # requests: only when a run is recorded in the service
    from shared.cli.jobs import client  # (requests)

    run = LocalRun(preset=args.preset, name=args.name, tags=args.tags, spec=result.spec,
                   host=f"{socket.gethostname()}:{os.getpid()}", started_at=started, finished_at=datetime.now(UTC),
                   result=RunSummary.model_validate(result.model_dump(include=set(RunSummary.model_fields))),
                   epochs=result.history, steps=steps, confusion=result.confusion, misclassified=result.misclassified)
    api, key = client(args), uuid.uuid4().hex
    try:
        job = api.record_run(run, key)
    except ServiceError as exc:
        saved = out / "run-record.json"
        saved.write_text(run.model_dump_json())
        print(f"cnnlab: error: the run was not recorded ({exc}). Its record is in {saved}; send it with: curl -X POST "
              f"{api.server}/runs -H 'Content-Type: application/json' -H 'Idempotency-Key: {key}' -d @{saved}",
              file=sys.stderr)
        return None
    print(f"recorded as job {job['id']}: {api.server}/results/{job['id']}", file=sys.stderr)
    return {"id": job["id"], "url": f"{api.server}/jobs/{job['id']}"}


class SeedBar(BarReporter):
    """One seed's reporter in a pack: all share one bar, counting every seed's steps."""

    def __init__(self, seed: int, shared: dict):
        super().__init__()
        self.seed, self.shared = seed, shared  # shared: the tqdm bar and its total

    def on_start(self, info: RunInfo) -> None:
        if not self.shared.get("told"):
            self.shared["told"] = True
            super().on_start(info)

    def on_step(self, epoch, step, steps, loss):
        if self.shared.get("bar") is None:
            total = self.shared["seeds"] * steps * self.shared["epochs"]
            self.shared["bar"] = tqdm(total=total, desc="seeds", unit="step", file=sys.stderr)
        self.shared["bar"].update(1)
        if loss is not None:
            self.shared["bar"].set_postfix(seed=self.seed, loss=f"{loss:.4f}")

    def on_epoch(self, m: EpochMetrics) -> None:
        self.shared["bar"].write(f"seed {self.seed} epoch {m.epoch}: train loss {m.train_loss:.4f}, "
                                 f"test loss {m.test_loss:.4f}, accuracy {m.test_accuracy:.2%}", file=sys.stderr)


def train_seeds(args: argparse.Namespace, spec: Spec, out: Path, stop) -> int:
    """`train --seeds`: the seeds as one pack; one JSON line with a `runs` entry per seed."""
    from shared.train.packs import fit_seeds, pick_strategy  # torch.func only when asked for

    seeds = parse_seeds(args.seeds)
    strategy = pick_strategy(spec, pick_device(spec.device)) if args.strategy == "auto" else args.strategy
    if args.resume is not None:
        raise ValueError("--seeds trains fresh runs: resume one seed alone with --set seed=N --resume CKPT")
    shared = {"seeds": len(seeds), "epochs": spec.epochs}
    reporters = {s: SeedBar(s, shared) for s in seeds}
    results = fit_seeds(spec, seeds, data_root=args.data_dir, out_dirs={s: out / f"seed-{s}" for s in seeds},
                        reporters=reporters, should_stop={s: stop for s in seeds}, strategy=strategy)
    if shared.get("bar") is not None:
        shared["bar"].close()
    done = [r for r in results.values() if isinstance(r, FitResult)]
    if not done:
        first = next(iter(results.values()))
        print(f"cnnlab: {'' if isinstance(first, Stopped) else 'error: '}{first}", file=sys.stderr)
        return 130 if isinstance(first, Stopped) else 1
    runs = [{"seed": s, "test_accuracy": r.test_accuracy, "test_loss": r.test_loss,
             "checkpoint": str(reporters[s].last_checkpoint) if reporters[s].last_checkpoint else None}
            if isinstance(r, FitResult) else {"seed": s, "error": f"{type(r).__name__}: {r}"}
            for s, r in results.items()]
    # vmap: every seed's train_seconds is the pack's; one by one: the pack trained for their sum
    train_seconds = done[0].train_seconds if strategy == "vmap" else sum(r.train_seconds for r in done)
    print(json.dumps({"preset": args.preset, "spec": spec.model_dump(mode="json", exclude={"seed"}),
                      "strategy": strategy, "train_seconds": train_seconds, "runs": runs}))
    failed = [r for r in results.values() if not isinstance(r, FitResult)]
    return 0 if not failed else 130 if any(isinstance(r, Stopped) for r in failed) else 1


