"""The `cnnlab` command: list presets and train one, locally, with a progress bar."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from shared import cli_sweep, cli_tokens
from shared.settings import settings
from shared.specs import PRESETS, Spec, SpecError, parse_assignments, preset_spec, resolve_checked
from shared.train.checkpoint import CheckpointError
from shared.train.data import DataError
from shared.train.distributed import DeviceUnavailable, pick_device, require_cuda_for_sync_bn
from shared.train.engine import Reporter, Stopped, fit
from shared.train.launch import torchrun_command
from shared.train.results import EpochMetrics, FitResult, RunInfo


class BarReporter(Reporter):
    """A tqdm bar per epoch on stderr; stdout stays free for the final JSON line."""

    def __init__(self):
        self.bar = None
        self.last_checkpoint: Path | None = None

    def on_start(self, info: RunInfo) -> None:
        d = info.data
        print(f"{info.spec.model} ({info.params:,} params) on {d.name}: "
              f"{d.train_samples:,} train / {d.test_samples:,} test, {info.environment.device}", file=sys.stderr)

    def on_step(self, epoch, step, steps, loss):
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(total=steps, desc=f"epoch {epoch}", unit="step", file=sys.stderr, leave=True)
        self.bar.update(1)
        if loss is not None:
            self.bar.set_postfix(loss=f"{loss:.4f}")

    def on_epoch(self, m: EpochMetrics) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        print(f"epoch {m.epoch}: train loss {m.train_loss:.4f}, test loss {m.test_loss:.4f}, "
              f"accuracy {m.test_accuracy:.2%}, {m.samples_per_second:,.0f} samples/s", file=sys.stderr)

    def on_checkpoint(self, epoch, path, sha256):
        self.last_checkpoint = path


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cnnlab", description="Train the lab's CNN experiments.")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("presets", help="list presets with their specs")
    tr = sub.add_parser("train", help="train a preset (with overrides) and print one JSON line")
    # No argparse `choices`: an unknown preset is a one-line SpecError naming the presets, like other bad input.
    tr.add_argument("preset", metavar="PRESET", help=f"one of {', '.join(PRESETS)}")
    tr.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a spec field, e.g. --set epochs=2 --set model_args.n_feature=8")
    tr.add_argument("--data-dir", type=Path, help="data root (default $CNNLAB_DATA_DIR or ./data)")
    tr.add_argument("--download", action="store_true", help="download a missing built-in dataset")
    tr.add_argument("--out", type=Path, help="checkpoint directory (default var/runs/PRESET)")
    tr.add_argument("--resume", type=Path, metavar="CKPT", help="continue from a checkpoint")
    tr.add_argument("--seeds", metavar="LIST", help="train these seeds together (0-7 or 0,3,5); checkpoints "
                    "go to OUT/seed-N and the JSON line holds one entry per seed under `runs`")
    tr.add_argument("--strategy", choices=["auto", "vmap", "sequential"], default="auto",
                    help="--seeds: vmap (stacked) or sequential (one by one; the default for convs on CPUs)")
    cli_sweep.add_parser(sub)
    cli_tokens.add_parser(sub)
    return p


SUMMARY_FIELDS = {"spec", "params", "test_accuracy", "test_loss", "epochs", "train_seconds", "eval_seconds",
                  "samples_per_second", "data", "environment"}


def summary(preset: str, result: FitResult, checkpoint: Path | None) -> dict:
    """The one JSON line `cnnlab train` prints."""
    return {"preset": preset, "checkpoint": str(checkpoint) if checkpoint else None,
            **result.model_dump(mode="json", include=SUMMARY_FIELDS)}


def launch_ranks(spec: Spec) -> int:
    """Several ranks: run this same command under torchrun, one process per rank."""
    if spec.sync_bn:
        require_cuda_for_sync_bn(pick_device(spec.device))
    return subprocess.call(torchrun_command(spec.world_size, "-m", "shared.cli", *sys.argv[1:]))


def train(args: argparse.Namespace) -> int:
    if args.download:
        os.environ["CNNLAB_DOWNLOAD"] = "1"  # the data layer reads it through shared.settings
    stop = {"asked": False}
    # Ctrl-C ends the run at the next step boundary; the last epoch's checkpoint stays usable.
    signal.signal(signal.SIGINT, lambda *_: stop.__setitem__("asked", True))
    reporter = BarReporter()
    try:
        resolved = resolve_checked(args.preset, parse_assignments(args.overrides))
        for w in resolved.warnings:  # the API returns the same warnings beside the job
            print(f"cnnlab: warning: {w.field}: {w.message}", file=sys.stderr)
        spec = resolved.spec
        out = args.out or settings().var_dir / "runs" / args.preset
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
    if result is not None:  # ranks other than 0 report nothing
        print(json.dumps(summary(args.preset, result, reporter.last_checkpoint)))
    return 0


def parse_seeds(text: str) -> list[int]:
    """`0-7`, `0,3,5` or both (`0-3,8`) as a list of distinct seeds, in order."""
    seeds: list[int] = []
    for part in text.split(","):
        lo, dash, hi = part.strip().partition("-")
        if not (lo.isdigit() and (not dash or hi.isdigit())) or (dash and int(hi) < int(lo)):
            raise ValueError(f"--seeds: {part.strip()!r} is not a seed or a range like 0-7")
        seeds += range(int(lo), int(hi) + 1) if dash else [int(lo)]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds: {text!r} names a seed twice")
    return seeds


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
        from tqdm import tqdm

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
    from shared.train.seeds import fit_seeds, pick_strategy  # torch.func only when asked for

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


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "presets":
        for name in PRESETS:
            print(json.dumps({"preset": name, "spec": preset_spec(name).model_dump()}))
        return 0
    if args.command == "sweep":
        return cli_sweep.sweep(args)
    if args.command == "tokens":
        return cli_tokens.run(args)
    return train(args)


if __name__ == "__main__":
    sys.exit(main())
