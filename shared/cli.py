"""The `cnnlab` command: presets, local training and sweeps, and the service's commands (submit, jobs, logs,
cancel, pull). Loads without torch: training modules are imported only by the commands that train."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from shared import cli_service, cli_sweep, cli_tokens
from shared.specs import PRESETS, preset_spec


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
    tr.add_argument("--record", action="store_true", help="record the finished run in the service (--server "
                    "or $CNNLAB_SERVER) so it shows on the pages; implied by --server")
    tr.add_argument("--name", help="the recorded job's name")
    tr.add_argument("--tag", dest="tags", action="append", default=[], help="a tag of the recorded job (repeatable)")
    cli_service.connection(tr)
    cli_sweep.add_parser(sub)
    cli_service.add_parsers(sub)
    cli_tokens.add_parser(sub)
    return p


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
    if args.command == "train":
        from shared import cli_train  # torch: only when training here

        return cli_train.train(args)
    return cli_service.run(args)


if __name__ == "__main__":
    sys.exit(main())
