"""The `cnnlab` command: list presets and train one, locally, with a progress bar."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from shared import cli_sweep
from shared.settings import settings
from shared.specs import PRESETS, Spec, SpecError, parse_assignments, preset_spec, resolve
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
    p = argparse.ArgumentParser(prog="cnnlab", description="Train the seed's CNN experiments.")
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
    cli_sweep.add_parser(sub)
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
        spec = resolve(args.preset, parse_assignments(args.overrides))
        if spec.world_size > 1 and "WORLD_SIZE" not in os.environ:
            return launch_ranks(spec)
        out = args.out or settings().var_dir / "runs" / args.preset
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


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "presets":
        for name in PRESETS:
            print(json.dumps({"preset": name, "spec": preset_spec(name).model_dump()}))
        return 0
    if args.command == "sweep":
        return cli_sweep.sweep(args)
    return train(args)


if __name__ == "__main__":
    sys.exit(main())
