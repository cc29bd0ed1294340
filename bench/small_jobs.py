"""Many tiny jobs through `make run` (scripts/run.sh: gunicorn API + one worker): per-job overhead and wall time.

20 independent `mnist-fc` jobs (train_limit 5000, test_limit 1000, seeds 1-20), each its own POST, as fast as the
client can send them. Per job, overhead = (finished_at - started_at) - train_seconds - eval_seconds, from the
service's own clock and result; per round, the wall time from the first POST to the last success seen by the
client (polling every 0.1 s). Each round starts run.sh afresh on a fresh var dir (SQLite, empty dataset cache)
and waits until the API answers and the worker (and, warm, its trainer) is up. Modes alternate round by round:
`warm` (the default: one warm trainer per slot) and `fresh` (CNNLAB_WARM_TRAINERS=0: a new process per job).

    python -m bench.small_jobs [--rounds 3] [--modes warm,fresh] [--port 5213] [--redis redis://127.0.0.1:6379/13]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
JOBS = 20
OVERRIDES = {"train_limit": 5000, "test_limit": 1000}
TARGETS = {"overhead_median_seconds": 0.5, "wall_seconds": 25.0}


def service_env(var: Path, data: Path, redis_url: str, port: int, mode: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNNLAB_")}
    return env | {"CNNLAB_VAR_DIR": str(var), "CNNLAB_DATA_DIR": str(data), "CNNLAB_REDIS_URL": redis_url,
                  "CNNLAB_PORT": str(port), "CNNLAB_WARM_TRAINERS": "1" if mode == "warm" else "0"}


def start(env: dict[str, str], var: Path, mode: str) -> tuple[subprocess.Popen, float]:
    """`make run` (migrate, then scripts/run.sh) on a fresh var dir; returns it once it serves, and how long that took."""
    t0 = time.perf_counter()
    subprocess.run([str(REPO / ".venv/bin/alembic"), "upgrade", "head"], cwd=REPO, env=env, check=True,
                   capture_output=True)
    log = var / "run.log"
    proc = subprocess.Popen(["scripts/run.sh"], cwd=REPO, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    from shared.store.publish import make_celery

    control = make_celery(env["CNNLAB_REDIS_URL"]).control
    url = f"http://127.0.0.1:{env['CNNLAB_PORT']}/healthz"
    deadline = time.monotonic() + 180
    while True:
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")
        try:
            api_up = requests.get(url, timeout=5).status_code == 200
        except requests.ConnectionError:
            api_up = False
        trainer_up = mode != "warm" or "warm in" in log.read_text(errors="replace")
        if api_up and trainer_up and control.ping(timeout=0.5):
            return proc, time.perf_counter() - t0
        time.sleep(0.2)


def stop(proc: subprocess.Popen) -> None:
    """run.sh, gunicorn, the worker and its trainers: one process group."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=30)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def run_jobs(base: str, token: str) -> dict:
    """POST the jobs one by one, wait until all succeeded; per-job overheads and the wall time."""
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {token}"
    t0 = time.perf_counter()
    ids = []
    for seed in range(1, JOBS + 1):
        r = s.post(f"{base}/jobs", json={"preset": "mnist-fc", "overrides": OVERRIDES | {"seed": seed}})
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    while True:
        items = {j["id"]: j["status"] for j in s.get(f"{base}/jobs", params={"limit": 100}).json()["items"]}
        states = [items.get(i) for i in ids]
        bad = [i for i, st in zip(ids, states, strict=True) if st in ("failed", "cancelled")]
        assert not bad, s.get(f"{base}/jobs/{bad[0]}").json()
        if all(st == "succeeded" for st in states):
            break
        time.sleep(0.1)
    wall = time.perf_counter() - t0
    jobs = [s.get(f"{base}/jobs/{i}").json() for i in ids]
    overheads = [_seconds(j["started_at"], j["finished_at"]) - j["result"]["train_seconds"] - j["result"]["eval_seconds"]
                 for j in jobs]
    return {"wall_seconds": wall, "overhead_seconds": overheads, "overhead_median_seconds": statistics.median(overheads),
            "train_seconds": [j["result"]["train_seconds"] for j in jobs],
            "eval_seconds": [j["result"]["eval_seconds"] for j in jobs],
            "server_span_seconds": _seconds(jobs[0]["created_at"], max(j["finished_at"] for j in jobs))}


def _seconds(a: str, b: str) -> float:
    from datetime import datetime

    return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()


def one_round(mode: str, args) -> dict:
    import redis

    redis.Redis.from_url(args.redis).flushdb()  # nothing left from an earlier round is delivered
    var = Path(tempfile.mkdtemp(prefix=f"cnnlab-small-{mode}-"))
    env = service_env(var, args.data_dir, args.redis, args.port, mode)
    proc, startup = start(env, var, mode)
    try:
        out = run_jobs(f"http://127.0.0.1:{args.port}", (var / "admin-token").read_text().strip())  # run.sh made it
    finally:
        stop(proc)
        shutil.rmtree(var, ignore_errors=True)
    return {"mode": mode, "startup_seconds": startup, "load_average": os.getloadavg(), **out}


def summary(rounds: list[dict]) -> dict:
    out = {}
    for mode in sorted({r["mode"] for r in rounds}):
        mine = [r for r in rounds if r["mode"] == mode]
        med = [r["overhead_median_seconds"] for r in mine]
        wall = [r["wall_seconds"] for r in mine]
        out[mode] = {"rounds": len(mine), "overhead_median_seconds": {"median": statistics.median(med),
                                                                      "min": min(med), "max": max(med)},
                     "wall_seconds": {"median": statistics.median(wall), "min": min(wall), "max": max(wall)}}
    return out


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()


def main() -> None:
    sys.path.append(str(REPO / "tests"))
    from support import data_dir_for_tests

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3, help="rounds per mode, modes alternating")
    ap.add_argument("--modes", default="warm,fresh")
    ap.add_argument("--port", type=int, default=5213)
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/13", help="a Redis database of the benchmark's own")
    ap.add_argument("--data-dir", type=Path, default=data_dir_for_tests())
    ap.add_argument("--out", type=Path, default=REPO / "bench/results/small_jobs.json")
    args = ap.parse_args()
    report = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
                          "load_average": os.getloadavg()},
              "commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
              "setup": "scripts/run.sh (gunicorn 2x4 + one worker), SQLite, fresh var dir per round, Redis broker",
              "jobs": JOBS, "preset": "mnist-fc", "overrides": OVERRIDES, "seeds": [1, JOBS], "targets": TARGETS,
              "rounds": []}
    for _ in range(args.rounds):
        for mode in args.modes.split(","):
            r = one_round(mode, args)
            report["rounds"].append(r)
            print(json.dumps({k: r[k] for k in ("mode", "wall_seconds", "overhead_median_seconds", "startup_seconds",
                                                "load_average")}), flush=True)
    report["summary"] = summary(report["rounds"])
    print(json.dumps(report["summary"], indent=2))
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
