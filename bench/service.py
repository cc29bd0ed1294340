"""Service benchmarks on this machine, with PostgreSQL, Redis, gunicorn and a real worker; JSON results.

1. POST /jobs throughput and latency over N requests (no worker consuming: only the API path is timed).
2. POST -> `running` with an idle worker (p50 target <= 250 ms).
3. A preset through the service against `cnnlab train` of the same preset, in the same run (target <= 5%).

    python bench/service.py [--requests 2000] [--preset cifar10-lenet --set dataset=cifar10-jpeg --set epochs=2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from support import (  # noqa: E402
    WorkerProcess,
    admin_token,
    bearer,
    data_dir_for_tests,
    drop_postgres_database,
    migrate,
    new_postgres_database,
    service_env,
)

REDIS = "redis://127.0.0.1:6379/13"
AUTH: dict[str, str] = {}  # the Authorization header, once main() has made an admin token
PORT = 5099


def percentile(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def start_api(env: dict, log: Path) -> subprocess.Popen:
    proc = subprocess.Popen([str(REPO / ".venv/bin/gunicorn"), "--bind", f"127.0.0.1:{PORT}", "--workers", "2",
                             "--threads", "8", "api:create_app()"], cwd=REPO, env=env,
                            stdout=open(log, "w"), stderr=subprocess.STDOUT)
    for _ in range(300):  # the app imports torch: a worker takes a few seconds to boot
        assert proc.poll() is None, log.read_text()
        try:
            requests.get(f"http://127.0.0.1:{PORT}/healthz", timeout=10)
            return proc
        except requests.ConnectionError:
            time.sleep(0.1)
    proc.terminate()
    raise RuntimeError(log.read_text())


def post_throughput(n: int, threads: int) -> dict:
    """POST n small jobs from `threads` keep-alive clients; every answer must be a 201."""
    body = {"preset": "mnist-fc", "overrides": {"train_limit": 100}}
    per_thread = n // threads

    def client(_):
        s = requests.Session()
        s.headers.update(AUTH)  # writes need a token
        lat = []
        for _ in range(per_thread):
            t = time.perf_counter()
            r = s.post(f"http://127.0.0.1:{PORT}/jobs", json=body)
            lat.append(time.perf_counter() - t)
            assert r.status_code == 201, r.text
        return lat

    t = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        lat = [x for chunk in pool.map(client, range(threads)) for x in chunk]
    wall = time.perf_counter() - t
    return {"requests": len(lat), "client_threads": threads, "seconds": wall, "requests_per_second": len(lat) / wall,
            "latency_ms": {"p50": 1000 * percentile(lat, 50), "p95": 1000 * percentile(lat, 95),
                           "p99": 1000 * percentile(lat, 99)}, "target_requests_per_second": 300}


def time_to_running(n: int) -> dict:
    """POST one job at a time to an idle worker and time until GET shows it running (polled every 5 ms)."""
    s = requests.Session()
    s.headers.update(AUTH)
    waits = []
    for _ in range(n):
        t = time.perf_counter()
        job = s.post(f"http://127.0.0.1:{PORT}/jobs", json={"preset": "mnist-fc", "overrides": {"train_limit": 64,
                                                                                               "test_limit": 64}}).json()
        while s.get(f"http://127.0.0.1:{PORT}/jobs/{job['id']}").json()["status"] == "queued":
            time.sleep(0.005)
        waits.append(time.perf_counter() - t)
        while s.get(f"http://127.0.0.1:{PORT}/jobs/{job['id']}").json()["status"] == "running":
            time.sleep(0.05)  # idle again before the next one
    return {"jobs": n, "ms": {"p50": 1000 * statistics.median(waits), "p95": 1000 * percentile(waits, 95),
                              "max": 1000 * max(waits)}, "target_p50_ms": 250}


def overhead(preset: str, overrides: dict, data: Path, env: dict, rounds: int = 3) -> dict:
    """Wall time of the same preset via `cnnlab train` and via POST -> succeeded, alternating, best of `rounds`.

    The dataset cache is warmed first, so neither side pays for decoding; the training time alone is kept too."""
    args = [a for k, v in overrides.items() for a in ("--set", f"{k}={v}")]
    warm = f"from shared.train.data import load_split; [load_split({overrides.get('dataset', 'mnist')!r}, t) for t in (1, 0)]"
    subprocess.run([sys.executable, "-c", warm], cwd=REPO, env=env, check=True)
    cli, svc = [], []
    s = requests.Session()
    s.headers.update(AUTH)
    for _ in range(rounds):
        t = time.perf_counter()
        proc = subprocess.run([str(REPO / ".venv/bin/cnnlab"), "train", preset, "--data-dir", str(data), *args,
                               "--out", "/tmp/cnnlab-bench-cli"], env=env, capture_output=True, text=True, check=True)
        cli.append((time.perf_counter() - t, json.loads(proc.stdout.strip().splitlines()[-1])))
        job = s.post(f"http://127.0.0.1:{PORT}/jobs", json={"preset": preset, "overrides": overrides}).json()
        while (j := s.get(f"http://127.0.0.1:{PORT}/jobs/{job['id']}").json())["status"] in ("queued", "running"):
            time.sleep(1.0)  # as a page would poll; polling faster takes CPU from the training on 2 cores
        assert j["status"] == "succeeded", j
        # The service's own clock, POST accepted -> job finished: the client's polling interval is not counted.
        created, finished = (datetime.fromisoformat(j[k]) for k in ("created_at", "finished_at"))
        svc.append(((finished - created).total_seconds(), j["result"]))
    (cli_wall, c), (svc_wall, r) = min(cli, key=lambda x: x[0]), min(svc, key=lambda x: x[0])
    return {"preset": preset, "overrides": overrides, "rounds": rounds,
            "cli": {"wall_seconds": [w for w, _ in cli], "train_seconds": c["train_seconds"],
                    "test_accuracy": c["test_accuracy"]},
            "service": {"wall_seconds": [w for w, _ in svc], "train_seconds": r["train_seconds"],
                        "test_accuracy": r["test_accuracy"]},
            "wall_overhead": svc_wall / cli_wall - 1, "train_overhead": r["train_seconds"] / c["train_seconds"] - 1,
            "wall_overhead_of_medians": statistics.median(w for w, _ in svc) / statistics.median(w for w, _ in cli) - 1,
            "target_overhead": 0.05}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--preset", default="cifar10-lenet")
    ap.add_argument("--rounds", type=int, default=5, help="alternating CLI/service runs of the preset")
    ap.add_argument("--set", dest="overrides", action="append", default=["dataset=cifar10-jpeg"])
    ap.add_argument("--out", type=Path, default=REPO / "bench/results/service.json")
    args = ap.parse_args()
    data = data_dir_for_tests()
    url = new_postgres_database()
    migrate(url)
    AUTH.update(bearer(admin_token(url)))  # an admin token: exempt from the rate limits and the job cap
    var = Path("/tmp/cnnlab-bench-service")
    var.mkdir(exist_ok=True)
    env = service_env(url, REDIS, var, data, var / "cache")
    import redis

    redis.Redis.from_url(REDIS).flushdb()
    try:
        api = start_api(env, var / "api.log")
    except BaseException:
        drop_postgres_database(url)
        raise
    report = {"machine": {"cpus": os.cpu_count()}, "database": "postgresql", "server": "gunicorn 2 workers x 8 threads"}
    try:
        report["post_jobs"] = post_throughput(args.requests, args.threads)
        print(json.dumps(report["post_jobs"]), flush=True)
        redis.Redis.from_url(REDIS).flushdb()  # the benchmark's jobs are not for the worker
        with __import__("sqlalchemy").create_engine(url).begin() as conn:
            conn.exec_driver_sql("UPDATE jobs SET status = 'cancelled', cancel_requested = true")
        worker = WorkerProcess(env, var / "worker.log", "bench-worker@localhost")
        try:
            report["post_to_running"] = time_to_running(20)
            print(json.dumps(report["post_to_running"]), flush=True)
            overrides = dict(o.split("=", 1) for o in args.overrides)
            report["service_overhead"] = overhead(args.preset, overrides, data, env, args.rounds)
            print(json.dumps(report["service_overhead"]), flush=True)
        finally:
            worker.stop()
    finally:
        api.terminate()
        api.wait()
        drop_postgres_database(url)
    args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
