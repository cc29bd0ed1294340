"""cifar10-fast through the engine (engine.fit, the ordinary path), N seeds: mean TTA accuracy and seconds per run.

GPU (one command, data and wheels prepared as in bench/gpu_check.sh):
    python bench/fast.py --data-dir /tmp/data --seeds 5            # -> bench/results/fast.json (or $OUT/fast.json)
CPU plumbing check (not a measurement): python bench/fast.py --device cpu --train-limit 1024 --test-limit 500 --epochs 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
from pathlib import Path

import torch

from shared.lab.specs import resolve
from shared.train import engine

TARGET = {"mean_accuracy": 0.905, "seconds": 5.3}  # the issue's: one H100/H200, cifar10-jpeg, 5 seeds


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def one(overrides: dict, seed: int, data_dir: Path) -> dict:
    result = engine.fit(resolve("cifar10-fast", {**overrides, "seed": seed}), data_root=data_dir)
    return {"seed": seed, "accuracy": result.test_accuracy, "plain_accuracy": result.tta.plain_accuracy,
            "train_seconds": result.train_seconds, "eval_seconds": result.eval_seconds,
            "seconds": result.train_seconds + result.eval_seconds}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", type=Path, default=Path(os.environ.get("CNNLAB_DATA_DIR", "../shared/data")))
    ap.add_argument("--dataset", default="cifar10-jpeg")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--train-limit", type=int)
    ap.add_argument("--test-limit", type=int)
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "bench/results")) / "fast.json")
    a = ap.parse_args()
    overrides = {"dataset": a.dataset, "device": a.device} | {k: v for k, v in (
        ("train_limit", a.train_limit), ("test_limit", a.test_limit), ("epochs", a.epochs)) if v is not None}
    one(overrides, 10_000, a.data_dir)  # warm-up run (kernels, caches), not counted, as airbench does
    runs = [one(overrides, seed, a.data_dir) for seed in range(a.seeds)]
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() and a.device != "cpu" else None
    accs = [r["accuracy"] for r in runs]
    out = {"gpu": gpu, "commit": commit(), "dataset": a.dataset, "overrides": overrides, "seeds": a.seeds,
           "mean_accuracy": statistics.mean(accs), "std_accuracy": statistics.stdev(accs) if len(accs) > 1 else 0.0,
           "mean_plain_accuracy": statistics.mean(r["plain_accuracy"] for r in runs),
           "seconds": statistics.mean(r["seconds"] for r in runs), "target": TARGET,
           "cpu_threads": torch.get_num_threads(), "runs": runs}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps({k: v for k, v in out.items() if k != "runs"}))


if __name__ == "__main__":
    main()
