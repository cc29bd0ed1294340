"""The evaluation's share of a `cnnlab train` run (issue 18): eval_seconds / (train_seconds + eval_seconds) from the
command's JSON line, for this tree and optionally an older checkout (--before DIR), alternating rounds.

    python -m bench.eval_share --before /tmp/old-checkout --rounds 3   # -> results/eval_share.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.throughput import load, machine

ROOT = Path(__file__).resolve().parents[1]
COMMAND = ["train", "cifar10-lenet", "--set", "dataset=cifar10-jpeg", "--set", "train_limit=5000", "--set", "epochs=1"]


def one_run(tree: Path, data_dir: Path, out: Path) -> dict:
    """The command run once from `tree`: its train and eval seconds, accuracy and wall time."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "shared.cli", *COMMAND, "--data-dir", str(data_dir), "--out", str(out)],
                          cwd=tree, env=env, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    line = json.loads(proc.stdout.strip().splitlines()[-1])
    train, ev = line["train_seconds"], line["eval_seconds"]
    return {"train_seconds": round(train, 3), "eval_seconds": round(ev, 3), "eval_share": round(ev / (train + ev), 4),
            "wall_seconds": round(wall, 2), "test_accuracy": line["test_accuracy"], "test_loss": line["test_loss"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--before", type=Path, help="an older checkout to measure too (the baseline)")
    p.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "eval_share.json")
    args = p.parse_args()
    trees = {"after": ROOT} | ({"before": args.before} if args.before else {})
    runs: dict[str, list[dict]] = {k: [] for k in trees}
    load_before = load()
    for r in range(args.rounds):
        for side in (list(trees) if r % 2 == 0 else list(trees)[::-1]):  # alternate which goes first
            runs[side].append(one_run(trees[side], args.data_dir, Path("/tmp") / f"eval-share-{side}"))
            print(side, runs[side][-1], file=sys.stderr, flush=True)
    result = {"machine": machine(), "command": "cnnlab " + " ".join(COMMAND), "load_before": load_before,
              "load_after": load(), "runs": runs,
              "median_eval_share": {k: sorted(v["eval_share"] for v in rs)[len(rs) // 2] for k, rs in runs.items()}}
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["median_eval_share"]))


if __name__ == "__main__":
    main()
