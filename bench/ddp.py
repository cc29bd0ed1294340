"""World size 1 against 2 on this machine's CPU (gloo) for the same job: samples/s and scaling efficiency.

    python bench/ddp.py   # -> bench/results/ddp.json
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from support import data_dir_for_tests  # noqa: E402

JOBS = {
    "cifar10-lenet": ["dataset=cifar10-jpeg", "train_limit=20000", "test_limit=1000", "epochs=2"],
    "cifar10-vgg": ["dataset=cifar10-jpeg", "train_limit=2048", "test_limit=256", "epochs=1"],
}


def train(preset: str, sets: list[str], world_size: int) -> dict:
    args = [a for s in [*sets, f"world_size={world_size}", "device=cpu"] for a in ("--set", s)]
    out = subprocess.run([sys.executable, "-m", "shared.cli", "train", preset, "--data-dir", str(data_dir_for_tests()),
                          "--out", f"/tmp/cnnlab-ddp-bench/{preset}-{world_size}", *args],
                         cwd=REPO, capture_output=True, text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return {k: r[k] for k in ("samples_per_second", "train_seconds", "test_accuracy")} | {
        "threads_per_rank": r["environment"]["threads"], "backend": r["environment"]["backend"]}


def main() -> None:
    report = {"cpus": os.cpu_count(), "note": "gloo ranks on one 2-core machine; torchrun gives each rank 1 thread"}
    for preset, sets in JOBS.items():
        one, two = train(preset, sets, 1), train(preset, sets, 2)
        speedup = two["samples_per_second"] / one["samples_per_second"]
        report[preset] = {"overrides": sets, "world_size_1": one, "world_size_2": two, "speedup": speedup,
                          "scaling_efficiency": speedup / 2}
        print(preset, json.dumps(report[preset]), flush=True)
    (REPO / "bench/results/ddp.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
