"""The whole lab through the service on one GPU: every study at its full size, 5 seeds, first POST to last verdict.

The service as `make run` serves it on a machine with nothing else installed: SQLite, the embedded filesystem
broker, gunicorn, one GPU worker (`python -m worker --gpus 0 --per-gpu auto`, or a fixed N). Every study is POSTed at once, so
the worker always has work; a study's wall time runs from its POST until its last job ended and its answer was
read. `nvidia-smi` is sampled every 0.5 s for the GPU's busy fraction. Per job: train, eval and the rest
(setup, data, checkpoints, queueing inside the worker) from its result and its start/end times.

    bash bench/lab_gpu.sh                                   # on the GPU machine (wheels and data carried)
    python -m bench.lab_gpu --size smoke --seeds 2 --only normalization    # here, on the CPU: the bench works

Results: bench/results/lab_gpu.json (`gpu`, `torch`, `commit`, `total_seconds`, one row per study).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from shared.lab.studies import STUDIES  # noqa: E402

OUT = REPO / "bench" / "results" / "lab_gpu.json"
PORT = 5177
BASE = f"http://127.0.0.1:{PORT}"


def git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""  # a carried copy without git: the commit comes from CNNLAB_COMMIT


class GpuSampler:
    """`nvidia-smi` every 0.5 s in the background: utilization (%) and memory used (MiB) per sample."""

    def __init__(self):
        self.samples: list[tuple[float, float]] = []
        self.proc = None
        if shutil.which("nvidia-smi"):
            self.proc = subprocess.Popen(["nvidia-smi", "--query-gpu=utilization.gpu,memory.used",
                                          "--format=csv,noheader,nounits", "-lms", "500", "-i", "0"],
                                         stdout=subprocess.PIPE, text=True)
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                util, mem = (float(x) for x in line.split(","))
            except ValueError:
                continue
            self.samples.append((util, mem))

    def summary(self) -> dict:
        if self.proc:
            self.proc.terminate()
        if not self.samples:
            return {"busy_fraction": None, "peak_memory_mib": None, "samples": 0}
        busy = sum(1 for u, _ in self.samples if u > 0) / len(self.samples)
        mean = sum(u for u, _ in self.samples) / len(self.samples) / 100
        return {"busy_fraction": round(busy, 3), "mean_utilization": round(mean, 3),
                "peak_memory_mib": max(m for _, m in self.samples), "samples": len(self.samples)}


def service_env(var: Path, data: Path) -> dict[str, str]:
    """The embedded default: SQLite in var/, the filesystem broker, rate-limit counters in memory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNNLAB_") or k == "CNNLAB_COMMIT"}
    return env | {"CNNLAB_DATABASE_URL": f"sqlite:///{var}/cnnlab.db", "CNNLAB_BROKER_URL": "filesystem://",
                  "CNNLAB_RATELIMIT_STORAGE_URL": "memory://", "CNNLAB_VAR_DIR": str(var),
                  "CNNLAB_DATA_DIR": str(data), "CNNLAB_CACHE_DIR": str(var / "cache"), "PYTHONUNBUFFERED": "1"}


def start(env: dict[str, str], var: Path, per_gpu: str) -> tuple[list[subprocess.Popen], dict[str, str]]:
    """Migrate, make the admin token, start gunicorn and one worker; wait until the API answers."""
    py = sys.executable
    subprocess.run([py, "-m", "alembic", "upgrade", "head"], cwd=REPO, env=env, check=True, capture_output=True)
    token_file = var / "admin-token"
    subprocess.run([py, "-m", "shared.cli", "tokens", "first-admin", "--save", str(token_file)], cwd=REPO, env=env,
                   check=True, capture_output=True)
    gpu = ["--gpus", "0"] if shutil.which("nvidia-smi") else []
    worker = subprocess.Popen([py, "-m", "worker", *gpu, "--per-gpu", str(per_gpu), "--loglevel", "WARNING"],
                              cwd=REPO, env=env, stdout=open(var / "worker.log", "w"), stderr=subprocess.STDOUT,
                              start_new_session=True)
    api = subprocess.Popen([py, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{PORT}",
                            "api:create_app()"], cwd=REPO, env=env, stdout=open(var / "api.log", "w"),
                           stderr=subprocess.STDOUT, start_new_session=True)
    for _ in range(600):
        try:
            if api.poll() is not None:
                raise RuntimeError((var / "api.log").read_text())
            requests.get(f"{BASE}/healthz", timeout=10)
            break
        except requests.RequestException:  # not listening yet, or still importing torch
            time.sleep(0.2)
        except BaseException:
            stop([api, worker])
            raise
    return [api, worker], {"Authorization": f"Bearer {token_file.read_text().strip()}"}


def stop(procs: list[subprocess.Popen]) -> None:
    """SIGTERM each process group (the worker drains, gunicorn ends its requests), then wait."""
    for p in procs:
        try:
            os.killpg(p.pid, 15)
            p.wait(timeout=60)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(p.pid, 9)


def job_split(job: dict) -> dict:
    """One job's wall (start to end of its last attempt's run) split into train, eval and the rest, in seconds."""
    result = job.get("result") or {}
    wall = None
    if job.get("started_at") and job.get("finished_at"):
        wall = (datetime.fromisoformat(job["finished_at"]) - datetime.fromisoformat(job["started_at"])).total_seconds()
    train, evals = result.get("train_seconds"), result.get("eval_seconds")
    rest = wall - train - (evals or 0) if wall is not None and train is not None else None
    return {"id": job["id"], "status": job["status"], "wall_s": wall, "train_s": train, "eval_s": evals,
            "other_s": rest, "test_accuracy": result.get("test_accuracy")}


def sweep_jobs(sweep_id: int) -> list[dict]:
    ids = [j["id"] for j in requests.get(f"{BASE}/jobs", params={"sweep_id": sweep_id, "limit": 200},
                                         timeout=60).json()["items"]]
    return [requests.get(f"{BASE}/jobs/{i}", timeout=60).json() for i in ids]


def study_row(name: str, size: str, sweep_id: int, wall: float, finished: bool) -> dict:
    """A study's answer and its jobs' time split, once its jobs have ended."""
    answer = requests.get(f"{BASE}/studies/{name}", params={"size": size}, timeout=60).json()["answer"]
    jobs = [job_split(j) for j in sweep_jobs(sweep_id)]
    total = {k: round(sum(j[k] or 0 for j in jobs), 2) for k in ("wall_s", "train_s", "eval_s", "other_s")}
    return {"study": name, "sweep_id": sweep_id, "wall_s": round(wall, 1), "finished": finished, "jobs": len(jobs),
            "job_seconds": total, "eval_fraction": round(total["eval_s"] / total["wall_s"], 3) if total["wall_s"] else None,
            "verdicts": [{"claim": c["text"], "verdict": c["verdict"], "diff": c["diff"], "ci": c["ci"]}
                         for c in answer["claims"]],
            "cells": [{"label": c["label"], "n": c["n"], "mean": c["test_accuracy"]["mean"]} for c in answer["cells"]],
            "per_job": jobs}


def run_all(names: list[str], size: str, seeds: int, auth: dict, timeout_s: float) -> tuple[float, list[dict]]:
    """POST every study, then poll their sweeps until each has no job queued or running."""
    t0 = time.perf_counter()
    posted = {}
    for name in names:
        r = requests.post(f"{BASE}/studies/{name}/run", json={"seeds": seeds, "size": size}, headers=auth, timeout=120)
        r.raise_for_status()
        posted[name] = r.json()["id"]
    rows, open_ = [], dict(posted)
    while open_ and time.perf_counter() - t0 < timeout_s:
        time.sleep(1)
        for name, sweep_id in list(open_.items()):
            counts = requests.get(f"{BASE}/sweeps/{sweep_id}", timeout=60).json()["counts"]
            if not counts["queued"] + counts["running"]:
                rows.append(study_row(name, size, sweep_id, time.perf_counter() - t0, True))
                print(json.dumps({k: rows[-1][k] for k in ("study", "wall_s", "job_seconds")}), flush=True)
                del open_[name]
    for name, sweep_id in open_.items():  # timed out: cancelled, reported as unfinished
        requests.post(f"{BASE}/sweeps/{sweep_id}/cancel", headers=auth, timeout=60)
        rows.append(study_row(name, size, sweep_id, time.perf_counter() - t0, False))
    return time.perf_counter() - t0, rows


def device_facts() -> dict:
    import torch  # the bench's one torch import: the device's name and torch's version for the record

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"gpu": gpu, "torch": torch.__version__}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="full", choices=["full", "quick", "smoke"])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--only", nargs="*", default=None, help="these studies (default: all)")
    ap.add_argument("--per-gpu", default="auto", help="jobs the GPU worker runs side by side: N, or auto (measured)")
    ap.add_argument("--data-dir", type=Path, default=Path(os.environ.get("CNNLAB_DATA_DIR", REPO.parent / "shared/data")))
    ap.add_argument("--timeout-min", type=float, default=30)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    names = args.only or list(STUDIES)
    var = Path(os.environ.get("CNNLAB_BENCH_VAR", "/tmp/cnnlab-lab-gpu"))
    shutil.rmtree(var, ignore_errors=True)
    var.mkdir(parents=True)
    procs, auth = start(service_env(var, args.data_dir.resolve()), var, args.per_gpu)
    sampler = GpuSampler()
    try:
        total, rows = run_all(names, args.size, args.seeds, auth, args.timeout_min * 60)
    finally:
        gpu = sampler.summary()
        stop(procs)
    report = {"bench": "lab_gpu", **device_facts(), "commit": os.environ.get("CNNLAB_COMMIT") or git("rev-parse", "HEAD"),
              "when": datetime.now(UTC).isoformat(timespec="seconds"), "size": args.size, "seeds": args.seeds,
              "per_gpu": args.per_gpu, "partial": args.size != "full" or args.seeds < 5 or len(names) < len(STUDIES),
              "total_seconds": round(total, 1), "gpu_utilization": gpu,
              "machine": {"platform": platform.platform(), "cores": os.cpu_count(), "load_avg": os.getloadavg()},
              "service": "gunicorn (gunicorn.conf.py) + one worker, SQLite, filesystem broker", "studies": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"total {total:.1f} s for {len(rows)} studies -> {args.out}")


if __name__ == "__main__":
    main()
