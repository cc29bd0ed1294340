"""A fleet simulated on this machine: N CPU workers as if on separate machines, one artifact store, PostgreSQL.

Each worker has a scratch directory of its own (CNNLAB_VAR_DIR, so CNNLAB_CHECKPOINT_DIR too) and shares only the
database, the broker (a redis-server of the benchmark's own, so its command counts are this run's alone) and the
artifact store. M tiny jobs (`mnist-fc`, train_limit 1000, test_limit 500, 3 epochs so that a job killed midway
has a checkpoint to resume from) go in over the API (gunicorn) once every worker is up; from then on, every few
seconds a worker busy with a job is SIGKILLed with its trainer, and a new one (a new "machine", empty disk) replaces
it. Each worker's trainer uses one torch thread (the 16 "machines" share 2 cores). Meanwhile GET /jobs is timed
(every --poll-every seconds) with `--stored` jobs in the database. Reported: jobs that succeeded exactly once, with
each epoch recorded once; jobs that resumed on another worker from a checkpoint; jobs started per second; database
connections at peak (pg_stat_activity); broker messages per job (LPUSHes: kombu's publish); GET /jobs latency.

    python -m bench.fleet                                   # 16 workers, 500 jobs, store file:// (the lead's run)
    python -m bench.fleet --workers 4 --jobs 30 --stored 2000 --out bench/results/fleet-small.json   # a check
    python -m bench.fleet --store s3   # needs moto (dev extras): a local S3 stand-in; --store db: db://
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests
from sqlalchemy import create_engine, text

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from support import (  # noqa: E402
    MotoServer,
    admin_token,
    data_dir_for_tests,
    drop_postgres_database,
    migrate,
    new_postgres_database,
    service_env,
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()


def percentile(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] if xs else float("nan")


def own_redis(root: Path) -> tuple[subprocess.Popen, str]:
    """A redis-server of this run's own (nothing persisted): its INFO counts this run's messages alone."""
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(root)], stdout=open(root / "redis.log", "wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    import redis

    for _ in range(100):
        try:
            redis.Redis(port=port).ping()
            return proc, f"redis://127.0.0.1:{port}/0"
        except redis.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError((root / "redis.log").read_text())


def broker_counts(url: str) -> dict[str, int]:
    """Redis command counts since start: LPUSH is kombu publishing a message (sends and redeliveries)."""
    import redis

    stats = redis.Redis.from_url(url).info("commandstats")
    return {k.removeprefix("cmdstat_"): v["calls"] for k, v in stats.items() if k in ("cmdstat_lpush", "cmdstat_publish",
                                                                                       "cmdstat_brpop")}


def fill(db_url: str, n: int) -> None:
    """`n` finished jobs, as a long-running service holds them (one INSERT ... SELECT)."""
    if n <= 0:
        return
    with create_engine(db_url).begin() as conn:
        conn.execute(text(
            "INSERT INTO jobs (name, preset, model, dataset, spec, status, queue, priority, created_at, finished_at, "
            "attempts, cancel_requested) SELECT 'stored ' || g, 'mnist-fc', 'fc2', 'mnist', '{}'::json, 'succeeded', "
            "'cpu', 0, now() - g * interval '1 second', now(), 1, false FROM generate_series(1, :n) g"), {"n": n})


class Fleet:
    """The worker processes, each on its own "machine" (a var dir of its own); started without waiting."""

    def __init__(self, root: Path, env: dict[str, str]):
        self.root, self.env, self.n = root, env, 0
        self.procs: dict[str, subprocess.Popen] = {}
        self.lock = threading.Lock()

    def start(self) -> str:
        with self.lock:
            self.n += 1
            name = f"fleet{self.n}@machine{self.n}"
        var = self.root / f"machine{self.n}"
        var.mkdir()
        env = self.env | {"CNNLAB_VAR_DIR": str(var)}
        proc = subprocess.Popen([sys.executable, "-m", "worker", "--queues", "cpu", "--name", name], cwd=REPO,
                                env=env, stdout=open(var / "worker.log", "ab"), stderr=subprocess.STDOUT,
                                start_new_session=True)
        with self.lock:
            self.procs[name] = proc
        return name

    def wait_ready(self, timeout: float) -> float:
        """Seconds until every worker started so far is ready (its Celery consumer up) and its trainer warm."""
        t0 = time.monotonic()

        def up(log: bytes) -> bool:
            return b" ready." in log and b"cnnlab trainer" in log and b" warm in " in log

        while not all(up((self.root / f"machine{i}" / "worker.log").read_bytes()) for i in range(1, self.n + 1)):
            if time.monotonic() - t0 > timeout:
                raise RuntimeError("the fleet did not start")
            time.sleep(0.5)
        return time.monotonic() - t0

    def kill(self, name: str) -> None:
        """SIGKILL the worker and its pool; its trainer dies with its parent (PR_SET_PDEATHSIG)."""
        with self.lock:
            proc = self.procs.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def stop(self) -> None:
        for name in list(self.procs):
            self.kill(name)


def killer(fleet: Fleet, db_url: str, every: float, done: threading.Event, kills: list[dict]) -> None:
    """Every `every` seconds SIGKILL a worker that holds a running job (any, if none does) and start another."""
    engine = create_engine(db_url, pool_size=1)
    while not done.wait(every):
        with engine.connect() as conn:
            busy = [w.split(":")[0] for w in conn.scalars(text("SELECT worker FROM jobs WHERE status = 'running'"))]
        names = [n for n in busy if n in fleet.procs] or list(fleet.procs)
        if not names:
            continue
        victim = random.choice(names)
        fleet.kill(victim)
        kills.append({"t": time.time(), "worker": victim, "was_running_a_job": victim in busy,
                      "replacement": fleet.start()})
    engine.dispose()


def sampler(db_url: str, api: str, every: float, done: threading.Event, out: dict) -> None:
    """While the fleet runs: GET /jobs latencies (one client, a request every `every` seconds: a few open pages,
    not a load test that would take a core of this 2-core machine from the fleet) and the database's connections."""
    engine = create_engine(db_url, pool_size=1)
    session, last_pg = requests.Session(), 0.0
    while not done.is_set():
        t = time.perf_counter()
        r = session.get(f"{api}/jobs", params={"limit": 50})
        out["get_jobs_ms"].append(1000 * (time.perf_counter() - t))
        assert r.status_code == 200, r.text
        if time.monotonic() - last_pg >= 1.0:
            last_pg = time.monotonic()
            out["memory_available_gb"].append(memory_available_gb())
            with engine.connect() as conn:
                out["connections"].append(conn.scalar(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")))
        time.sleep(max(0.0, every - (time.perf_counter() - t)))
    engine.dispose()


def get_jobs_times(api: str, n: int) -> list[float]:
    """`n` GET /jobs latencies (ms), one after another."""
    session, out = requests.Session(), []
    for _ in range(n):
        t = time.perf_counter()
        assert session.get(f"{api}/jobs", params={"limit": 50}).status_code == 200
        out.append(1000 * (time.perf_counter() - t))
    return out


def memory_available_gb() -> float:
    """MemAvailable from /proc/meminfo (GiB): what the fleet leaves to the rest of the machine."""
    with open("/proc/meminfo") as f:
        fields = dict(line.split(":", 1) for line in f)
    return int(fields["MemAvailable"].split()[0]) / 2**20


def start_api(env: dict[str, str], root: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([str(REPO / ".venv/bin/gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "2",
                             "--threads", "8", "api:create_app()"], cwd=REPO, env=env | {"CNNLAB_VAR_DIR": str(root / "api")},
                            stdout=open(root / "api.log", "wb"), stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(1200):  # the app imports torch: seconds on a loaded machine
        assert proc.poll() is None, (root / "api.log").read_text()
        try:
            requests.get(f"{url}/healthz", timeout=10)
            return proc, url
        except (requests.ConnectionError, requests.Timeout):  # not listening yet, or its workers still booting
            time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    raise RuntimeError((root / "api.log").read_text())


def submit(api: str, n: int, overrides: dict, token: str) -> list[int]:
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {token}"  # an admin token: writes need one, and admins pass the rate limit
    body = {"preset": "mnist-fc", "overrides": overrides}
    ids = []
    for _ in range(n):
        r = s.post(f"{api}/jobs", json=body)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    return ids


def wait_done(db_url: str, ids: list[int], timeout: float) -> bool:
    engine = create_engine(db_url, pool_size=1)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                left = conn.scalar(text("SELECT count(*) FROM jobs WHERE id = ANY(:ids) AND status IN "
                                        "('queued', 'running')"), {"ids": ids})
            if not left:
                return True
            time.sleep(1.0)
        return False
    finally:
        engine.dispose()


def outcome(db_url: str, ids: list[int]) -> dict:
    """Per job: its status, its recorded epochs against its spec's, its attempts; resumes on another worker."""
    engine = create_engine(db_url)
    with engine.connect() as conn:
        jobs = conn.execute(text("SELECT id, status, attempts, (spec->>'epochs')::int AS epochs FROM jobs "
                                 "WHERE id = ANY(:ids)"), {"ids": ids}).all()
        epochs = dict(conn.execute(text("SELECT job_id, array_agg(epoch ORDER BY epoch) FROM epoch_metrics "
                                        "WHERE job_id = ANY(:ids) GROUP BY job_id"), {"ids": ids}).all())
        log = conn.execute(text("SELECT job_id, attempt, worker, start_epoch FROM job_attempts WHERE job_id = ANY(:ids) "
                                "ORDER BY job_id, attempt"), {"ids": ids}).all()
        starts = sorted(conn.scalars(text("SELECT started_at FROM jobs WHERE id = ANY(:ids) AND started_at IS NOT NULL"),
                                     {"ids": ids}))
    engine.dispose()
    by_job: dict[int, list] = {}
    for row in log:
        by_job.setdefault(row.job_id, []).append(row)
    resumed = [j for j, rows in by_job.items() if any(
        r.start_epoch > 0 and r.worker.split(":")[0] != rows[i - 1].worker.split(":")[0] for i, r in enumerate(rows) if i)]
    exact = [j.id for j in jobs if j.status == "succeeded" and epochs.get(j.id) == list(range(1, j.epochs + 1))]
    span = (starts[-1] - starts[0]).total_seconds() if len(starts) > 1 else float("nan")
    return {"jobs": len(ids), "succeeded": sum(j.status == "succeeded" for j in jobs),
            "succeeded_exactly_once": len(exact), "statuses": {s: sum(j.status == s for j in jobs) for s in
                                                               {j.status for j in jobs}},
            "duplicate_epoch_rows": sum(len(e) - len(set(e)) for e in epochs.values()),
            "jobs_with_more_than_one_attempt": sum(j.attempts > 1 for j in jobs),
            "resumed_on_another_worker_from_a_checkpoint": len(resumed),
            "restarted_from_scratch_after_a_kill": sum(1 for rows in by_job.values() for r in rows[1:]
                                                       if r.start_epoch == 0),
            "dispatch": {"first_starts": len(starts), "seconds": span, "jobs_started_per_second": len(starts) / span
                         if span == span and span > 0 else None}}


def store_env(kind: str, root: Path) -> tuple[dict[str, str], MotoServer | None]:
    if kind == "file":
        return {"CNNLAB_ARTIFACT_STORE": (root / "store").as_uri()}, None
    if kind == "db":
        return {"CNNLAB_ARTIFACT_STORE": "db://"}, None
    moto = MotoServer(root / "moto.log")
    return moto.env | {"CNNLAB_ARTIFACT_STORE": moto.url}, moto


def drive(args, db_url: str, api: str, fleet: Fleet, broker: str) -> dict:
    """Submit the jobs, kill and replace workers while they run, time GET /jobs; the numbers once all are done."""
    done, kills = threading.Event(), []
    samples: dict = {"get_jobs_ms": [], "connections": [], "memory_available_gb": []}
    threads = [threading.Thread(target=sampler, args=(db_url, api, args.poll_every, done, samples), daemon=True)]
    threads.append(threading.Thread(target=killer, args=(fleet, db_url, args.kill_every, done, kills), daemon=True))
    t0 = time.time()
    for t in threads:  # the killing starts with the submitting: jobs run (and die) while others still arrive
        t.start()
    ids = submit(api, args.jobs, {"train_limit": args.train_limit, "test_limit": args.test_limit, "epochs": args.epochs},
                 admin_token(db_url))
    finished = wait_done(db_url, ids, args.timeout)
    wall = time.time() - t0
    done.set()
    for t in threads:
        t.join(timeout=60)
    counts = broker_counts(broker)
    return outcome(db_url, ids) | {
        "all_finished": finished, "wall_seconds": wall, "kills": len(kills),
        "kills_of_busy_workers": sum(k["was_running_a_job"] for k in kills),
        "broker": counts | {"messages_per_job": counts.get("lpush", 0) / len(ids)},
        "db_connections_peak": max(samples["connections"], default=None),
        "memory_available_gb_lowest": min(samples["memory_available_gb"], default=None),
        "get_jobs": {"requests": len(samples["get_jobs_ms"]), "every_seconds": args.poll_every,
                     "p50_ms": percentile(samples["get_jobs_ms"], 50),
                     "p95_ms": percentile(samples["get_jobs_ms"], 95), "stored_jobs": max(args.stored, args.jobs)}}


def run(args, root: Path) -> dict:
    """Set up the database, broker, store, API and workers; drive the fleet; tear everything down."""
    db_url = new_postgres_database()
    migrate(db_url)
    redis_proc, broker = own_redis(root)
    extra, moto = store_env(args.store, root)
    env = service_env(db_url, broker, root, data_dir_for_tests(), root / "cache", CNNLAB_LEASE_SECONDS=str(args.lease),
                      CNNLAB_DISPATCH_SECONDS=str(args.dispatch_seconds),
                      CNNLAB_WARM_TRAINERS="0" if args.fresh else "1",
                      # 16 "machines" share 2 cores: one torch thread each, as a machine's slots share its cores
                      CNNLAB_TRAINER_THREADS=str(args.trainer_threads), **extra)
    fleet, api_proc = Fleet(root, env), None
    try:
        fill(db_url, args.stored - args.jobs)
        api_proc, api = start_api(env, root)
        for _ in range(args.workers):
            fleet.start()
        started = fleet.wait_ready(600)
        quiet = get_jobs_times(api, 40)  # the same request with the fleet up and idle: the API's own cost
        report = drive(args, db_url, api, fleet, broker) | {"fleet_start_seconds": started, "get_jobs_fleet_idle": {
            "requests": len(quiet), "p50_ms": percentile(quiet, 50), "p95_ms": percentile(quiet, 95)}}
        with create_engine(db_url).connect() as conn:
            report["db_max_connections"] = int(conn.scalar(text("SHOW max_connections")))
        return report
    finally:
        fleet.stop()
        if api_proc is not None:
            os.killpg(api_proc.pid, signal.SIGTERM)
            api_proc.wait()
        redis_proc.kill()
        if moto is not None:
            moto.stop()
        drop_postgres_database(db_url)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--jobs", type=int, default=500)
    ap.add_argument("--train-limit", type=int, default=1000)
    ap.add_argument("--test-limit", type=int, default=500)
    ap.add_argument("--epochs", type=int, default=3, help="the preset trains 1 epoch, whose only checkpoint is at "
                    "the end: with 3, a killed job has checkpoints to resume from")
    ap.add_argument("--kill-every", type=float, default=5.0, help="seconds between two worker kills")
    ap.add_argument("--stored", type=int, default=10_000, help="jobs in the database while GET /jobs is timed")
    ap.add_argument("--trainer-threads", type=int, default=1, help="CNNLAB_TRAINER_THREADS of every worker")
    ap.add_argument("--poll-every", type=float, default=0.5, help="seconds between two timed GET /jobs")
    ap.add_argument("--store", choices=["file", "s3", "db"], default="file")
    ap.add_argument("--lease", type=float, default=10.0, help="CNNLAB_LEASE_SECONDS: a dead worker's job waits this")
    ap.add_argument("--dispatch-seconds", type=float, default=2.0, help="CNNLAB_DISPATCH_SECONDS")
    ap.add_argument("--fresh", action="store_true", help="a fresh trainer process per job (CNNLAB_WARM_TRAINERS=0): "
                    "less memory held by idle workers")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for every job to finish")
    ap.add_argument("--root", type=Path, default=Path("/tmp/cnnlab-bench-fleet"))
    ap.add_argument("--out", type=Path, default=REPO / "bench/results/fleet.json")
    ap.add_argument("--label", default="", help="a note stored with the results (e.g. 'small validation run')")
    args = ap.parse_args()
    import shutil

    shutil.rmtree(args.root, ignore_errors=True)
    args.root.mkdir(parents=True)
    report = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
                          "load_average_at_start": os.getloadavg()},
              "commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
              "label": args.label, "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}
    report["results"] = run(args, args.root)
    report["machine"]["load_average_at_end"] = os.getloadavg()
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(json.dumps(report["results"], indent=2, default=str))


if __name__ == "__main__":
    main()
