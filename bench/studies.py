"""Every study's quick size through the service (gunicorn + one real worker, PostgreSQL, Redis): wall time, verdicts.

As `make run` serves it: the API on its own port and database, one worker (Celery, concurrency 1), each study
POSTed to /studies/<name>/run and waited for, then its answer read from GET /studies/<name>. Noisy: other
sessions share this machine's 2 cores, and the wall time carries their load.

    python -m bench.studies                                # every study, quick, 5 seeds (hours on 2 loaded cores)
    python -m bench.studies --only normalization --seeds 2 --size smoke   # a check that the bench works

A run with fewer seeds, another size, some studies only, or a study that timed out is marked "partial": true.
Every seed's value is stored, so `python -m bench.studies_table --write` re-renders the README's table from it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from support import (  # noqa: E402 - the tests' helpers start the same real services
    WorkerProcess,
    admin_token,
    bearer,
    data_dir_for_tests,
    drop_postgres_database,
    migrate,
    new_postgres_database,
    service_env,
)

from shared.lab.studies import STUDIES  # noqa: E402

REDIS = "redis://127.0.0.1:6379/5"  # this branch's own Redis database
PORT = 5155
BASE = f"http://127.0.0.1:{PORT}"
AUTH: dict[str, str] = {}  # the Authorization header, once main() has made an admin token
OUT = REPO / "bench" / "results" / "studies.json"
# per claim: what bench/studies_table.py re-renders the README's table from (every seed's value is in `cells`)
VERDICT_FIELDS = ("verdict", "sentence", "diff", "ci", "p_value", "p_adjusted", "paired", "mde_points", "seeds_needed",
                  "margin", "shown")


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10).stdout.strip()


def start_api(env: dict, log: Path) -> subprocess.Popen:
    proc = subprocess.Popen([str(REPO / ".venv/bin/gunicorn"), "--bind", f"127.0.0.1:{PORT}", "--workers", "2",
                             "--threads", "4", "api:create_app()"], cwd=REPO, env=env,
                            stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)
    for _ in range(600):  # the app imports torch: a worker takes seconds to boot on a loaded machine
        if proc.poll() is not None:
            raise RuntimeError(log.read_text())
        try:
            requests.get(f"{BASE}/healthz", timeout=10)
            return proc
        except requests.ConnectionError:
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError(log.read_text())


def run_one(name: str, size: str, seeds: int, timeout_s: float) -> dict:
    """POST the study's run, wait until no job is queued or running, read the answer."""
    t0 = time.perf_counter()
    r = requests.post(f"{BASE}/studies/{name}/run", json={"seeds": seeds, "size": size}, headers=AUTH, timeout=120)
    r.raise_for_status()
    sweep_id, counts = r.json()["id"], r.json()["counts"]
    while counts["queued"] + counts["running"] and time.perf_counter() - t0 < timeout_s:
        time.sleep(5)
        counts = requests.get(f"{BASE}/sweeps/{sweep_id}", timeout=60).json()["counts"]
    wall = time.perf_counter() - t0
    done = not counts["queued"] + counts["running"]
    if not done:
        requests.post(f"{BASE}/sweeps/{sweep_id}/cancel", headers=AUTH, timeout=60)
    answer = requests.get(f"{BASE}/studies/{name}", params={"size": size}, timeout=60).json()["answer"]
    return {"study": name, "sweep_id": sweep_id, "wall_s": round(wall, 1), "finished": done, "counts": counts,
            "dataset": answer["dataset"], "version": answer["version"], "lab_answer": STUDIES[name].lab_answer,
            "cells": [{"label": c["label"], "n": c["n"], "mean": c["test_accuracy"]["mean"],
                       "ci95": c["test_accuracy"]["ci95"], "per_seed": c["per_seed"]} for c in answer["cells"]],
            "verdicts": [{"claim": c["text"], **{k: c[k] for k in VERDICT_FIELDS}} for c in answer["claims"]],
            "load_avg_1min": round(os.getloadavg()[0], 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--size", default="quick", choices=["quick", "full", "smoke"])
    ap.add_argument("--only", nargs="*", default=None, help="these studies (default: all)")
    ap.add_argument("--limit", type=int, default=None, help="the first N studies only")
    ap.add_argument("--timeout-min", type=float, default=120, help="per study; then its jobs are cancelled")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    names = (args.only or list(STUDIES))[:args.limit]
    url = new_postgres_database()
    migrate(url)
    AUTH.update(bearer(admin_token(url)))  # an admin token: exempt from the rate limits and the job cap
    var = Path("/tmp/cnnlab-bench-studies")
    var.mkdir(exist_ok=True)
    env = service_env(url, REDIS, var, data_dir_for_tests(), var / "cache", OMP_NUM_THREADS="2")
    import redis

    redis.Redis.from_url(REDIS).flushdb()
    api = start_api(env, var / "api.log")
    worker = WorkerProcess(env, var / "worker.log", "bench-studies@localhost")
    results = []
    try:
        for name in names:
            results.append(run_one(name, args.size, args.seeds, args.timeout_min * 60))
            print(json.dumps({k: results[-1][k] for k in ("study", "wall_s", "finished", "verdicts")}), flush=True)
            write(args, names, results)
    finally:
        worker.stop()
        os.killpg(api.pid, 15)
        api.wait()
        drop_postgres_database(url)


def write(args, names: list[str], results: list[dict]) -> None:
    partial = (args.seeds < 5 or args.size != "quick" or len(names) < len(STUDIES) or len(results) < len(names)
               or not all(r["finished"] for r in results))
    report = {"bench": "studies", "partial": partial, "size": args.size, "seeds": args.seeds, "studies": names,
              "when": datetime.now(UTC).isoformat(timespec="seconds"),
              "machine": {"platform": platform.platform(), "cores": os.cpu_count(), "load_average": os.getloadavg()},
              "commit": git("rev-parse", "HEAD"),
              "dirty": bool(git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench/results")),
              "service": "gunicorn 2x4 + one worker (concurrency 1), PostgreSQL, Redis", "results": results,
              "note": "wall time per study on a shared, loaded 2-core machine: noisy"}
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
