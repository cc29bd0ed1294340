"""The `cnnlab` command: presets, local training and sweeps, and the service's commands (submit, jobs, logs,
cancel, pull). Loads without torch: training modules are imported only by the commands that train."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from shared.cli import jobs, sweep, tokens
from shared.lab.seeds import HELP as SEEDS_HELP
from shared.lab.specs import PRESETS, preset_spec


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
    tr.add_argument("--seeds", metavar="SEEDS", help=f"train these seeds together: {SEEDS_HELP}; checkpoints "
                    "go to OUT/seed-N and the JSON line holds one entry per seed under `runs`")
    tr.add_argument("--strategy", choices=["auto", "vmap", "sequential"], default="auto",
                    help="--seeds: vmap (stacked) or sequential (one by one; the default for convs on CPUs)")
    tr.add_argument("--record", action="store_true", help="record the finished run in the service (--server "
                    "or $CNNLAB_SERVER) so it shows on the pages; implied by --server")
    tr.add_argument("--name", help="the recorded job's name")
    tr.add_argument("--tag", dest="tags", action="append", default=[], help="a tag of the recorded job (repeatable)")
    jobs.connection(tr)
    sweep.add_parser(sub)
    jobs.add_parsers(sub)
    tokens.add_parser(sub)
    from shared.cli import verdict  # the study rules on a TA's numbers (no torch)

    verdict.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "presets":
        for name in PRESETS:
            print(json.dumps({"preset": name, "spec": preset_spec(name).model_dump()}))
        return 0
    if args.command == "sweep":
        return sweep.sweep(args)
    if args.command == "tokens":
        return tokens.run(args)
    if args.command == "verdict":
        from shared.cli import verdict  # scipy (~0.3 s): only for this command

        return verdict.run(args)
    if args.command == "train":
        from shared.cli import train  # torch: only when training here

        return train.train(args)
    return jobs.run(args)


if __name__ == "__main__":
    sys.exit(main())
