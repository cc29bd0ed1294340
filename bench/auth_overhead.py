"""What a token costs a request: GET /jobs/<id> over real HTTP (werkzeug, one thread) without a token, with a
user's token (rate-limited in Redis) and with an admin's (exempt), on PostgreSQL; median and p90 in ms.

    .venv/bin/python -m bench.auth_overhead [--n 400]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from support import (  # noqa: E402
    REDIS_URL,
    LiveAPI,
    bearer,
    data_dir_for_tests,
    drop_postgres_database,
    migrate,
    new_postgres_database,
    new_token,
)


def timed(url: str, headers: dict, n: int) -> dict[str, float]:
    s = requests.Session()
    s.headers.update(headers)
    lat = []
    for _ in range(n):
        t = time.perf_counter()
        assert s.get(url, timeout=30).status_code == 200
        lat.append((time.perf_counter() - t) * 1000)
    lat.sort()
    return {"median_ms": round(statistics.median(lat), 2), "p90_ms": round(lat[int(0.9 * n)], 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=400)
    args = ap.parse_args()
    url = new_postgres_database()
    try:
        migrate(url)
        api = LiveAPI(url, "redis://127.0.0.1:1/0", data_dir_for_tests(),
                      {"RATELIMIT_STORAGE_URI": REDIS_URL, "RATE_LIMIT_READS": "1000000/minute"})
        job = api.post("/jobs", json={"preset": "mnist-fc"}).json()["error"]["details"]["job"]  # no broker: 503
        target = f"{api.url}/jobs/{job['id']}"
        cases = {"anonymous": {}, "user token": bearer(new_token(url)[1]), "admin token": api.headers}
        timed(target, {}, 50)  # warm up
        out = {name: timed(target, h, args.n) for name, h in cases.items()}
        api.close()
    finally:
        drop_postgres_database(url)
    print(json.dumps({"n": args.n, "database": "postgresql", "limiter": "redis", **out}, indent=1))


if __name__ == "__main__":
    main()
