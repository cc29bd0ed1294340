"""Sweep API cost at the size cap: POST /sweeps of 1,000 jobs (every cell validated, stored, enqueued on Redis),
then GET /sweeps/<id> (cell statistics) and results.csv, on SQLite and PostgreSQL, rounds alternating.

    .venv/bin/python -m bench.sweep_api [--rounds 3] [--redis redis://127.0.0.1:6379/9]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from support import (  # noqa: E402
    admin_token,
    data_dir_for_tests,
    drop_postgres_database,
    migrate,
    new_postgres_database,
    token_client,
)

from api import create_app  # noqa: E402
from shared.lab.sweeps import MAX_JOBS  # noqa: E402

CELLS, SEEDS = MAX_JOBS // 4, 4  # 250 cells x 4 seeds
BODY = {"name": "bench", "base": {"preset": "mnist-cnn", "overrides": {"train_limit": 1000}},
        "grid": {"lr": [round(0.0001 * (i + 1), 6) for i in range(CELLS)]}, "seeds": SEEDS}


def one_round(client) -> dict[str, float]:
    """Seconds for each request of one sweep's life."""
    t0 = time.perf_counter()
    r = client.post("/sweeps", json=BODY)
    t1 = time.perf_counter()
    assert r.status_code == 201, r.json
    assert client.get(f"/sweeps/{r.json['id']}").status_code == 200
    t2 = time.perf_counter()
    assert client.get(f"/sweeps/{r.json['id']}/results.csv").status_code == 200
    t3 = time.perf_counter()
    return {"post_s": t1 - t0, "get_s": t2 - t1, "csv_s": t3 - t2}


def spread(xs: list[float]) -> dict[str, float]:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--redis", default=os.environ.get("CNNLAB_TEST_REDIS_URL", "redis://127.0.0.1:6379/9"))
    args = ap.parse_args()
    import redis

    pg = new_postgres_database()
    sqlite = f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    urls = {"sqlite": sqlite, "postgresql": pg}
    clients = {}
    for name, url in urls.items():
        migrate(url)
        app = create_app({"DATABASE_URL": url, "BROKER_URL": args.redis, "DATA_DIR": data_dir_for_tests()})
        clients[name] = token_client(app, admin_token(url))
    runs: dict[str, list[dict]] = {n: [] for n in urls}
    try:
        for _ in range(args.rounds):
            for name, client in clients.items():  # alternate: the machine is shared and noisy
                runs[name].append(one_round(client))
                redis.Redis.from_url(args.redis).flushdb()  # this bench's own database: drop the unconsumed jobs
    finally:
        drop_postgres_database(pg)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True).stdout)
    out = {"bench": "sweep_api", "when": datetime.now().astimezone().isoformat(timespec="seconds"),
           "machine": {"platform": platform.platform(), "cores": os.cpu_count(), "load_average": os.getloadavg()},
           "commit": head, "dirty": dirty,
           "sweep": {"cells": CELLS, "seeds": SEEDS, "jobs": CELLS * SEEDS, "preset": "mnist-cnn"},
           "rounds": args.rounds, "note": "in-process Flask test client; real Redis enqueue; noisy shared machine",
           "results": {n: {k: spread([r[k] for r in rs]) for k in rs[0]} for n, rs in runs.items()}}
    path = REPO / "bench" / "results" / "sweep_api.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out["results"], indent=2))


if __name__ == "__main__":
    main()
