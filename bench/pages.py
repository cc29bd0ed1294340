"""Results pages with many jobs: server time of GET / and GET /jobs over 10,000 jobs, SQLite and PostgreSQL.

A fresh database is migrated and filled with N jobs (mixed presets and statuses, newest first by created_at);
succeeded jobs get a result whose details are as big as a real job's (confusion matrix, history and ~40 KB of
page artifacts). Each route is requested through the Flask test client, so the time is the server's alone
(routing, queries, rendering), after 3 untimed warm-up requests; median, p95 and max go to
bench/results/pages.json. PostgreSQL is used when reachable (database cnnlab_bench, dropped afterwards).

    python -m bench.pages
    python -m bench.pages --jobs 10000 --repeat 30 --pg-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url

from api import create_app
from shared.lab.specs import PRESETS, resolve
from shared.store.db import get_engine
from shared.store.models import EpochMetric, Job, Result, StepLoss, utcnow

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
TARGET_MS = 200.0
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
PG_DB = "cnnlab_bench"
STATUSES = ["succeeded"] * 14 + ["failed"] * 2 + ["cancelled", "queued", "running"]
ROUTES = ["/", "/jobs", "/?status=succeeded", "/jobs?status=succeeded", "/?preset=mnist-cnn", "/?status=running",
          "/?offset=9950", "/jobs?offset=9950&limit=50", "/?partial=rows", "/results/{last}", "/compare?ids={few}",
          "/report", "/jobs?tag=t3", "/?tag=t3", "/jobs?tag=rare", "/jobs?archived=true"]
GATED = {"/", "/jobs"}  # the routes the target is about; the others are measured for the record


def migrate(url: str) -> None:
    cfg = Config(str(REPO / "alembic.ini"))
    cfg.attributes.update(url=url, configure_logger=False)
    command.upgrade(cfg, "head")


def fill(url: str, n: int, seed: int = 0) -> dict:
    """N jobs in batches of 1,000; returns a few ids to request."""
    rng = random.Random(seed)
    specs = {p: resolve(p).model_dump() for p in PRESETS}
    artifacts = {"samples": {"png": "data:image/png;base64," + "A" * 40_000, "labels": ["0"] * 40}}
    now = utcnow()
    engine = get_engine(url)
    for lo in range(0, n, 1000):
        jobs, results, epochs, steps = [], [], [], []
        for i in range(lo, min(lo + 1000, n)):
            preset = rng.choice(list(PRESETS))
            status = "succeeded" if i >= n - 20 else rng.choice(STATUSES)  # the newest: full results pages
            created = now - timedelta(minutes=n - i)
            done = status in ("succeeded", "failed", "cancelled")
            jobs.append({"id": i + 1, "name": f"bench {i + 1}", "preset": preset, "model": specs[preset]["model"],
                         "dataset": specs[preset]["dataset"], "spec": specs[preset], "status": status,
                         "queue": "cpu", "priority": 0, "created_at": created, "attempts": 1,
                         "started_at": created + timedelta(seconds=3) if status != "queued" else None,
                         "finished_at": created + timedelta(seconds=50) if done else None,
                         "cancel_requested": False, "archived": i % 20 == 0,  # tags: 1 in 10 has t3, 1 in 1,000 rare
                         "tags": [f"t{i % 10}", "week 3"] + (["rare"] if i % 1000 == 0 else []),
                         "progress": {"phase": "training", "epoch": 1, "epochs": 1, "fraction": rng.random()}})
            if status == "succeeded":
                acc = rng.uniform(0.6, 0.99)
                results.append({"job_id": i + 1, "test_accuracy": acc, "test_loss": 1 - acc, "params": 6422,
                                "epochs": 1, "train_seconds": 40.0, "samples_per_second": 1500.0,
                                "data": {"name": specs[preset]["dataset"], "source": "bench", "classes": list("0123456789")},
                                "environment": {"torch": "bench", "device": "cpu"}, "created_at": created,
                                "details": {"confusion": [[rng.randrange(1000) for _ in range(10)] for _ in range(10)],
                                            "misclassified": [], "history": [], "artifacts": artifacts}})
            if i >= n - 20:  # the newest jobs get curves, for the results and compare pages
                epochs += [{"job_id": i + 1, "epoch": e, "train_loss": 1 / e, "test_loss": 1 / e,
                            "test_accuracy": 0.9, "seconds": 1.0, "train_seconds": 1.0,
                            "samples_per_second": 1.0} for e in (1, 2, 3)]
                steps += [{"job_id": i + 1, "epoch": 1 + g // 10, "step": g % 10 + 1, "global_step": g + 1,
                           "loss": 2 / (g + 1)} for g in range(30)]
        with engine.begin() as conn:
            for model, rows in ((Job, jobs), (Result, results), (EpochMetric, epochs), (StepLoss, steps)):
                if rows:
                    conn.execute(insert(model), rows)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:  # explicit ids: move the sequence past them, and give the planner stats
            conn.execute(text("SELECT setval('jobs_id_seq', (SELECT max(id) FROM jobs))"))
            conn.execute(text("ANALYZE"))
    return {"last": n, "few": ",".join(str(n - k) for k in range(5))}


def measure(client, path: str, repeat: int) -> dict:
    for _ in range(3):
        assert client.get(path).status_code == 200, path
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        resp = client.get(path)
        times.append((time.perf_counter() - t0) * 1000)
        assert resp.status_code == 200, path
    times.sort()
    return {"median_ms": round(statistics.median(times), 2), "p95_ms": round(times[int(0.95 * (len(times) - 1))], 2),
            "max_ms": round(times[-1], 2), "bytes": len(resp.data)}


def run(url: str, n: int, repeat: int) -> dict:
    migrate(url)
    t0 = time.perf_counter()
    ids = fill(url, n)
    client = create_app({"DATABASE_URL": url}).test_client()
    routes = {r.format(**ids): measure(client, r.format(**ids), repeat) for r in ROUTES}
    gated = {r: routes[r] for r in GATED}
    return {"url": make_url(url).render_as_string(hide_password=True), "jobs": n,
            "fill_seconds": round(time.perf_counter() - t0, 1), "routes": routes,
            "meets_target": all(v["p95_ms"] <= TARGET_MS for v in gated.values())}


def postgres(admin_url: str, n: int, repeat: int) -> dict:
    try:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{PG_DB}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{PG_DB}"'))
    except Exception as exc:  # noqa: BLE001 - no server: recorded, not fatal
        return {"skipped": f"PostgreSQL not reachable at {admin_url}: {type(exc).__name__}: {exc}".splitlines()[0]}
    url = make_url(admin_url).set(database=PG_DB).render_as_string(hide_password=False)
    try:
        return run(url, n, repeat)
    finally:
        get_engine(url).dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{PG_DB}" WITH (FORCE)'))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--pg-url", default=os.environ.get("CNNLAB_BENCH_PG_URL", PG_ADMIN))
    ap.add_argument("--no-pg", action="store_true")
    ap.add_argument("--out", type=Path, default=RESULTS / "pages.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = run(f"sqlite:///{tmp}/bench.db", args.jobs, args.repeat)
    pg = {"skipped": "--no-pg"} if args.no_pg else postgres(args.pg_url, args.jobs, args.repeat)
    out = {"target_ms": TARGET_MS, "gated_routes": sorted(GATED), "statistic": "p95 of server time",
           "method": __doc__.split("\n\n")[1].replace("\n", " "),
           "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
           "sqlite": sqlite, "postgresql": pg}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps(out, indent=2) + "\n")
    tmp_out.replace(args.out)
    for name, res in (("sqlite", sqlite), ("postgresql", pg)):
        if "routes" in res:
            print(name, {r: res["routes"][r]["p95_ms"] for r in res["routes"]}, "meets target:", res["meets_target"])
        else:
            print(name, res)
    sys.exit(0 if all(r.get("meets_target", True) for r in (sqlite, pg)) else 1)


if __name__ == "__main__":
    main()
