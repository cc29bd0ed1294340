"""Per-job time of the studies' quick cells, one seed each, as `cnnlab train` runs them; sizes the `quick` sizes.

Each cell runs as its own `cnnlab train` process (start-up, data loading, training, evaluation, checkpoint: what
a worker's trainer child does) with ONE torch thread. Wall seconds on this shared machine carry other sessions'
load, and a 2-thread job's CPU seconds too (its threads spin while descheduled), so the estimate uses the
single-threaded child's CPU seconds: 5 seeds x the cells' CPU seconds / 2 cores (two one-thread jobs at a
time). Noisy: cache and memory contention still inflate it. CIFAR cells use cifar10-jpeg.

    python -m bench.study_cells                   # every study (about 25 min on 2 loaded cores)
    python -m bench.study_cells shuffle residual  # some of them
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

from shared.lab.studies import STUDIES, get_study

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "study_cells.json"
DATASETS = {"cifar10": "cifar10-jpeg"}  # the original CIFAR-10 release is not on this machine
SEEDS, CORES = 5, 2


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()


def run_cell(preset: str, overrides: dict, data_dir: str, out: Path) -> dict:
    """One `cnnlab train` process: wall and CPU seconds, and its summary line."""
    sets = [a for k, v in overrides.items() for a in ("--set", f"{k}={json.dumps(v)}")]
    dataset = DATASETS.get(overrides.get("dataset") or get_preset_dataset(preset))
    if dataset:
        sets += ["--set", f"dataset={dataset}"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "shared.cli", "train", preset, *sets, "--data-dir", data_dir,
                           "--out", str(out)], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{preset} {overrides}: {proc.stderr[-2000:]}")
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "train_s": round(summary.get("train_seconds", 0), 2),
            "test_accuracy": summary.get("test_accuracy"), "load_avg_1min": round(os.getloadavg()[0], 2)}


def get_preset_dataset(preset: str) -> str:
    from shared.lab.specs import PRESETS

    return PRESETS[preset]["dataset"]


def measure(name: str, data_dir: str, out: Path) -> dict:
    study = get_study(name)
    cells = {}
    for label, overrides in study.cell_overrides("quick").items():
        cells[label] = run_cell(study.preset, overrides, data_dir, out)
        print(f"{name} | {label}: {cells[label]}", flush=True)
    cpu = sum(c["cpu_s"] for c in cells.values())
    return {"cells": cells, "jobs_5_seeds": SEEDS * len(cells), "cpu_s_one_seed": round(cpu, 1),
            "estimate_minutes_5_seeds_2_cores": round(SEEDS * cpu / CORES / 60, 1),
            "wall_minutes_5_seeds_as_measured": round(SEEDS * sum(c["wall_s"] for c in cells.values()) / 60, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("studies", nargs="*", default=list(STUDIES))
    ap.add_argument("--data-dir", default=os.environ.get("CNNLAB_DATA_DIR", str(ROOT.parent.parent / "shared/data")))
    args = ap.parse_args()
    old = json.loads(OUT.read_text()) if OUT.exists() else {"studies": {}}
    meta = {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--", "shared")),
            "platform": platform.platform(), "cores": os.cpu_count(), "python": platform.python_version(),
            "load_average": os.getloadavg(), "method": __doc__.split("\n\n")[1].replace("\n", " ")}
    out = Path(os.environ.get("CNNLAB_VAR_DIR", "/tmp")) / "study_cells"
    for name in args.studies:
        old["studies"][name] = {**measure(name, args.data_dir, out), **meta,
                                "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        OUT.write_text(json.dumps(old, indent=1) + "\n")  # after each study: a long run keeps what it measured


if __name__ == "__main__":
    main()
