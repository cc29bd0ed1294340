"""raise-accuracy-ladder at a size (quick: the 2-core budget of 10 minutes for 5 seeds), timed per rung.

Every job of the study's sweep body (`Study.sweep_body`, expanded as POST /sweeps expands it) trains through the
worker trainer's path: each rung's seeds handed to `fit_pack` together, as `worker/trainer.py` `run_pack` hands a
claimed cell (conv nets on the CPU: one seed after another), with epoch checkpoints written and the pages' images
drawn (`figures.of_run`). Left out: the service's own overhead (queueing, the database writes, the process and
its start-up: a warm trainer has none). One process, torch's default threads (one per core). Noisy: a shared
machine, other sessions' load is in the wall time; the load average is recorded before and after.

    python -m bench.ladder                       # quick, 5 seeds -> bench/results/ladder_quick.json
    python -m bench.ladder --seeds 1 --out /tmp/ladder.json   # a one-seed estimate
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import torch

from shared.lab.studies import get_study
from shared.lab.sweeps import SweepRequest, expand
from shared.train import figures
from shared.train.engine import Reporter
from shared.train.packs import fit_pack

ROOT = Path(__file__).resolve().parents[1]
STUDY = "raise-accuracy-ladder"
BUDGET_MINUTES = 10.0  # the issue's: the quick ladder, 5 seeds, on 2 CPU cores


class Drawn(Reporter):
    """Keeps the finished run, so its pages' images are drawn from it as the worker draws them."""

    run = None

    def on_done(self, run):
        self.run = run


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return platform.processor() or platform.machine()


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()


def rungs(size: str, seeds: int, dataset: str) -> dict[str, list]:
    """label -> the rung's specs, one per seed, as the sweep's jobs hold them."""
    study = get_study(STUDY)
    body = study.sweep_body(size, seeds)
    body["base"]["overrides"] = {**body["base"]["overrides"], "dataset": dataset}
    cells = expand(SweepRequest.model_validate(body)).cells
    return {label: [c.spec.model_copy(update={"seed": s}) for s in range(seeds)]
            for label, c in zip(study.cell_values(size), cells, strict=True)}


def train_rung(specs: list, data_dir: Path, scratch: Path) -> dict:
    """One rung's seeds through fit_pack, checkpoints and images included: wall seconds and each seed's result."""
    reporters = [Drawn() for _ in specs]
    t0 = time.perf_counter()
    results = fit_pack(specs, data_root=data_dir, out_dirs=[scratch / f"seed-{s.seed}" for s in specs],
                       reporters=reporters)
    images_errors = set()
    for r, rep in zip(results, reporters, strict=True):
        if isinstance(r, BaseException):
            raise r
        try:
            figures.of_run(rep.run, r.misclassified)
        except Exception as exc:  # noqa: BLE001 - as the worker: the result stands, the error is recorded
            images_errors.add(f"{type(exc).__name__}: {exc}")
    wall = time.perf_counter() - t0
    return {"seconds": round(wall, 1), "jobs": len(specs), "images_error": sorted(images_errors) or None,
            "train_seconds": round(sum(r.train_seconds for r in results), 1),
            "eval_seconds": round(sum(r.eval_seconds for r in results), 1),
            "mean_accuracy": round(statistics.mean(r.test_accuracy for r in results), 4),
            "accuracies": [round(r.test_accuracy, 4) for r in results]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", default="quick")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--dataset", default="cifar10-jpeg")  # the original release is not on this machine
    ap.add_argument("--data-dir", type=Path, default=Path(os.environ.get("CNNLAB_DATA_DIR", ROOT.parent / "shared/data")))
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    out = a.out or ROOT / "bench" / "results" / f"ladder_{a.size}.json"
    load_before, t0, per_rung = os.getloadavg(), time.perf_counter(), {}
    with tempfile.TemporaryDirectory() as scratch:
        for i, (label, specs) in enumerate(rungs(a.size, a.seeds, a.dataset).items()):
            per_rung[label] = train_rung(specs, a.data_dir, Path(scratch) / str(i))
            print(f"{label}: {per_rung[label]}", flush=True)
    total = time.perf_counter() - t0
    result = {"study": STUDY, "version": get_study(STUDY).version, "size": a.size, "seeds": a.seeds,
              "dataset": a.dataset, "commit": git("rev-parse", "--short", "HEAD"), "dirty": bool(git("status", "--porcelain")),
              "machine": {"host": platform.node(), "cpu": cpu_model(),
                          "cores": os.cpu_count(), "torch": torch.__version__, "threads": torch.get_num_threads()},
              "load_avg_before": [round(x, 2) for x in load_before],
              "load_avg_after": [round(x, 2) for x in os.getloadavg()],
              "total_seconds": round(total, 1), "total_minutes": round(total / 60, 2),
              "budget_minutes": BUDGET_MINUTES, "within_budget": total / 60 <= BUDGET_MINUTES, "rungs": per_rung}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "rungs"}))


if __name__ == "__main__":
    main()
