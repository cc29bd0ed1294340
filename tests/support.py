"""Helpers for tests that need real parts: databases, a worker process, a live API."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import redis
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


_ADMIN_TOKENS: dict[str, str] = {}


def admin_token(db_url: str) -> str:
    """An admin API token in that (migrated) database, made once per database per test run."""
    if db_url not in _ADMIN_TOKENS:
        from shared.store import tokens
        from shared.store.db import session_scope

        with session_scope(db_url) as s:
            _ADMIN_TOKENS[db_url] = tokens.create_token(s, f"test-admin-{uuid.uuid4().hex[:8]}", admin=True)
    return _ADMIN_TOKENS[db_url]


def new_token(db_url: str, name: str | None = None, admin: bool = False) -> tuple[str, str]:
    """A fresh token (a user of its own): (name, token)."""
    from shared.store import tokens
    from shared.store.db import session_scope

    name = name or f"user-{uuid.uuid4().hex[:8]}"
    with session_scope(db_url) as s:
        return name, tokens.create_token(s, name, admin=admin)


def succeed(db_url: str, job_ids: list[int], accuracies: list[float]) -> None:
    """Mark jobs succeeded with these test accuracies (as a worker would store them)."""
    from shared.store.db import session_scope
    from shared.store.models import Job, JobStatus, Result

    with session_scope(db_url) as s:
        for job_id, acc in zip(job_ids, accuracies, strict=True):
            s.get(Job, job_id).status = JobStatus.SUCCEEDED
            s.add(Result(job_id=job_id, test_accuracy=acc, test_loss=1 - acc, params=1, epochs=1, train_seconds=2.0,
                         samples_per_second=1.0, data={}, environment={}, details={}))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token_client(app, token: str):
    """A Flask test client that sends `Authorization: Bearer <token>` with every request."""
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    client.token = token
    return client


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
    """The Flask app on a real socket (werkzeug server in a thread); get/post/delete carry an admin token.

    `token`/`headers` are that token and its Authorization header; plain `requests` calls go without it."""

    def __init__(self, db: str, broker: str, data: Path, config: dict | None = None, store: str | None = None):
        from werkzeug.serving import make_server

        from api import create_app

        self.app = create_app({"DATABASE_URL": db, "BROKER_URL": broker, "DATA_DIR": data}
                              | ({"ARTIFACT_STORE": store} if store else {}) | (config or {}))
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.token = admin_token(db)
        self.headers = bearer(self.token)
        self.http = requests.Session()
        self.http.headers.update(self.headers)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def get(self, path, **kw):
        return self.http.get(self.url + path, timeout=30, **kw)

    def post(self, path, **kw):
        return self.http.post(self.url + path, timeout=30, **kw)

    def delete(self, path, **kw):
        return self.http.delete(self.url + path, timeout=30, **kw)

    def wait(self, job_id: int, statuses=("succeeded", "failed", "cancelled"), timeout: float = 180,
             attempts: int | None = None) -> dict:
        """Poll GET /jobs/<id> until the job reaches one of `statuses` (on attempt `attempts`, if given)."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.get(f"/jobs/{job_id}").json()
            if job["status"] in statuses and attempts in (None, job["attempts"]):
                return job
            assert time.monotonic() < deadline, f"job {job_id} stuck in {job['status']}: {job}"
            time.sleep(0.2)

    def close(self):
        self.server.shutdown()
        self.http.close()


def linked_data_dir(source: Path, target: Path) -> Path:
    """A writable data root: the shared datasets linked in, room for datasets a test makes."""
    for entry in source.iterdir():
        if entry.is_dir():
            (target / entry.name).symlink_to(entry)
    return target


class TCPProxy:
    """A TCP forwarder on 127.0.0.1 that a test can cut (every connection dropped, new ones refused) and restore."""

    def __init__(self, target_port: int, host: str = "127.0.0.1"):
        import socket

        self.target = (host, target_port)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.conns: list = []
        self.lock = threading.Lock()
        self.listener = None
        self.restore()

    def restore(self) -> None:
        import socket

        self.listener = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def cut(self) -> None:
        import socket

        self.listener.close()
        with self.lock:
            for c in self.conns:
                with contextlib.suppress(OSError):
                    c.shutdown(socket.SHUT_RDWR)
                c.close()
            self.conns.clear()

    def _accept(self, listener) -> None:
        import socket

        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # cut
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src, dst) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.close()


# Reads a Chart.js canvas in a page: its datasets, their points, the painted pixels, error bars where it has them.
DRAWN = """id => {
  const canvas = document.getElementById(id), chart = Chart.getChart(canvas);
  const px = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let ink = 0; for (let i = 3; i < px.length; i += 4) ink += px[i] > 0;
  return {sets: chart.data.datasets.length, points: chart.data.datasets.map(d => d.data.length), ink,
          bars: (chart.data.datasets[0].errorBars || []).filter(Boolean).length};
}"""



def shot(pg, name: str) -> None:
    """A full-page screenshot for a person to look at."""
    folder = Path(os.environ.get("CNNLAB_SCREENSHOT_DIR", REPO / "var" / "screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def serve(app) -> tuple[str, object]:
    """The app on a real socket in a thread: (base URL, server to shut down)."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}", server


class MotoServer:
    """moto in server mode on a free port: a local S3-compatible endpoint (a stand-in for S3 or MinIO)."""

    def __init__(self, log: Path, bucket: str = "cnnlab"):
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.proc = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p",
                                      str(port)], stdout=open(log, "ab"), stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.endpoint = f"http://127.0.0.1:{port}"
        self.env = {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                    "AWS_DEFAULT_REGION": "us-east-1"}
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(self.endpoint, timeout=1)
                break
            except requests.ConnectionError:
                assert self.proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        requests.put(f"{self.endpoint}/{bucket}", timeout=5).raise_for_status()  # create the bucket
        self.url = f"s3://{bucket}/artifacts"

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


@contextlib.contextmanager
def private_lab(name: str, data_root, cache_root, tmp_path_factory, **env):
    """A LiveAPI on `private_backends`, with `var`, `data_dir` (the data linked into a folder of its own) and the
    workers' `env` (plus `env`'s CNNLAB_* overrides); dropped and emptied afterwards."""
    import redis

    url, broker = private_backends()
    var = tmp_path_factory.mktemp(name)
    data = linked_data_dir(data_root, tmp_path_factory.mktemp(f"{name}-data"))
    api = LiveAPI(url, broker, data)
    api.var, api.data_dir = var, data
    api.env = service_env(url, broker, var, data, cache_root, **env)
    try:
        yield api
    finally:
        api.close()
        drop_postgres_database(url)
        redis.Redis.from_url(broker).flushdb()


def private_backends() -> tuple[str, str]:
    """A new migrated PostgreSQL database and the Redis database below the session's (15 -> 14), emptied: workers
    of a test's own, apart from the session's `service` worker (tests using it run one at a time)."""
    import redis

    base, db = REDIS_URL.rsplit("/", 1)
    broker = f"{base}/{int(db) - 1}"
    redis.Redis.from_url(broker).flushdb()
    url = new_postgres_database()
    migrate(url)
    return url, broker


EXAMPLE_NETS = REPO / "tests" / "fixtures" / "cnnlab_example_nets"


def install_example_nets(target: Path) -> Path:
    """`pip install` the example package of own nets (tests/fixtures/cnnlab_example_nets) into `target`, a folder
    to put on sys.path / PYTHONPATH: its entry points are real installed metadata, and the venv stays as it was."""
    source = target / "src"
    shutil.copytree(EXAMPLE_NETS, source)  # setuptools builds in the source tree: not in the repository's
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                    "--target", str(target / "site"), str(source)], check=True, timeout=300)
    return target / "site"


class Receiver:
    """A webhook receiver on a real socket: records every POST (path, headers, JSON body) and answers each with the
    next of `codes` (the last one repeated)."""

    def __init__(self, codes: tuple[int, ...] = (200,)):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.codes, self.posts = list(codes), []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.posts.append({"path": self.path, "headers": dict(self.headers), "json": json.loads(body),
                                    "at": time.monotonic()})
                code = outer.codes.pop(0) if len(outer.codes) > 1 else outer.codes[0]
                self.send_response(code)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A redis-server of this test's own, without persistence: a restart comes back empty."""

    def __init__(self, port: int):
        self.port, self.url, self.proc = port, f"redis://127.0.0.1:{port}/0", None
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
                                      "--appendonly", "no"], stdout=subprocess.DEVNULL)
        for _ in range(100):
            try:
                redis.Redis.from_url(self.url).ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()
