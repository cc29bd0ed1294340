"""Helpers for tests that need real parts: databases, a worker process, a live API."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import requests
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parents[1]
PG_ADMIN_URL = os.environ.get("CNNLAB_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("CNNLAB_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def alembic_config(url: str) -> Config:
    cfg = Config(str(REPO / "alembic.ini"))
    cfg.attributes["url"] = url
    cfg.attributes["configure_logger"] = False
    return cfg


def data_dir_for_tests() -> Path:
    """CNNLAB_TEST_DATA, else the provided ../shared/data, else ./data (where `make test` downloads MNIST)."""
    if os.environ.get("CNNLAB_TEST_DATA"):
        return Path(os.environ["CNNLAB_TEST_DATA"]).resolve()
    shared = REPO.parent / "shared" / "data"
    return (shared if shared.is_dir() else REPO / "data").resolve()


def migrate(url: str) -> None:
    command.upgrade(alembic_config(url), "head")


def new_postgres_database() -> str:
    """A fresh, empty database on the local server; dropped by `drop_postgres_database`."""
    name = f"cnnlab_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(url: str) -> None:
    from shared.store.db import close_engine

    close_engine(url)
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    admin.dispose()


def service_env(db: str, broker: str, var: Path, data: Path, cache: Path, **extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNNLAB_")}
    return env | {"CNNLAB_DATABASE_URL": db, "CNNLAB_REDIS_URL": broker, "CNNLAB_VAR_DIR": str(var),
                  "CNNLAB_DATA_DIR": str(data), "CNNLAB_CACHE_DIR": str(cache), "PYTHONUNBUFFERED": "1"} | extra


class WorkerProcess:
    """A real `python -m worker` process (Celery, prefork, concurrency 1 unless `args` say --per-gpu N)."""

    def __init__(self, env: dict[str, str], log: Path, name: str, queues: str = "cpu,gpu", args: tuple[str, ...] = ()):
        self.log = log
        self.proc = subprocess.Popen([sys.executable, "-m", "worker", "--queues", queues, "--name", name, *args],
                                     cwd=REPO, env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + 60
        while " ready." not in log.read_text(errors="replace"):
            assert self.proc.poll() is None, f"worker exited:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"worker not ready:\n{log.read_text()}"
            time.sleep(0.2)

    def stop(self) -> None:
        """Stop the worker and everything it started (training children included)."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
                self.proc.wait(timeout=20)
                return
            except ProcessLookupError:
                return
            except subprocess.TimeoutExpired:
                continue


class LiveAPI:
    """The Flask app on a real socket (werkzeug server in a thread)."""

    def __init__(self, db: str, broker: str, data: Path):
        from werkzeug.serving import make_server

        from api import create_app

        app = create_app({"DATABASE_URL": db, "BROKER_URL": broker, "DATA_DIR": data})
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def get(self, path, **kw):
        return requests.get(self.url + path, timeout=30, **kw)

    def post(self, path, **kw):
        return requests.post(self.url + path, timeout=30, **kw)

    def wait(self, job_id: int, statuses=("succeeded", "failed", "cancelled"), timeout: float = 180) -> dict:
        """Poll GET /jobs/<id> until the job reaches one of `statuses`."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.get(f"/jobs/{job_id}").json()
            if job["status"] in statuses:
                return job
            assert time.monotonic() < deadline, f"job {job_id} stuck in {job['status']}: {job}"
            time.sleep(0.2)

    def close(self):
        self.server.shutdown()


def linked_data_dir(source: Path, target: Path) -> Path:
    """A writable data root: the shared datasets linked in, room for datasets a test makes."""
    for entry in source.iterdir():
        if entry.is_dir():
            (target / entry.name).symlink_to(entry)
    return target
