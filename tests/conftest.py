"""Fixtures for real parts: fresh SQLite and PostgreSQL databases, Redis, a Celery worker process, a live API."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support import (
    REDIS_URL,
    LiveAPI,
    MotoServer,
    Receiver,
    RedisServer,
    WorkerProcess,
    data_dir_for_tests,
    drop_postgres_database,
    free_port,
    install_example_nets,
    linked_data_dir,
    migrate,
    new_postgres_database,
    service_env,
)

# Apps built in tests keep their rate-limit counters in memory unless a test points them at Redis: never the
# shared server's database 0 (the default CNNLAB_REDIS_URL).
os.environ.setdefault("CNNLAB_RATELIMIT_STORAGE_URL", "memory://")
# Module-scoped apps answer many 401s from 127.0.0.1 on purpose; tests/api/test_limits.py sets its own 401 limit.
os.environ.setdefault("CNNLAB_RATE_LIMIT_UNAUTHORIZED", "100000/minute")

SERVICE_FIXTURES = {"pg_url", "redis_url", "service", "moto", "lab_service"}  # need PostgreSQL, Redis or worker processes
SERVICE_DIRS = ("worker", "browser")  # real workers, Chromium


def pytest_collection_modifyitems(config, items):
    """Mark what needs real services `services`; `make test-fast` runs the rest (`-m "not services"`)."""
    for item in items:
        on_pg = getattr(item, "callspec", None) is not None and item.callspec.params.get("db_url") == "pg"
        path = Path(str(item.fspath)).relative_to(Path(__file__).parent)
        if on_pg or SERVICE_FIXTURES & set(item.fixturenames) or path.parts[0] in SERVICE_DIRS \
                or path.name == "test_run.py":
            item.add_marker(pytest.mark.services)


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = data_dir_for_tests()
    assert (root / "MNIST" / "raw").is_dir(), f"test data missing: {root} (set CNNLAB_TEST_DATA)"
    return root


@pytest.fixture(scope="session")
def cache_root(tmp_path_factory) -> Path:
    """One decoded-dataset cache for the whole run, so each split is decoded once."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def pg_url():
    url = new_postgres_database()
    migrate(url)
    yield url
    drop_postgres_database(url)


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'cnnlab.db'}"
    migrate(url)
    return url


@pytest.fixture(scope="session", params=["sqlite", "pg"])
def db_url(request):
    """Every test that takes this runs once on SQLite (embedded default) and once on PostgreSQL."""
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture(scope="session")
def redis_url():
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.ping()
    client.flushdb()  # a database of its own: nothing left from an earlier run is redelivered
    yield REDIS_URL
    client.flushdb()


@pytest.fixture(scope="session")
def service(redis_url, data_root, cache_root, tmp_path_factory):
    """A database of its own + Redis + one real worker + the API over HTTP, as in production."""
    url = new_postgres_database()
    migrate(url)
    var = tmp_path_factory.mktemp("var")
    data = linked_data_dir(data_root, tmp_path_factory.mktemp("data"))
    env = service_env(url, redis_url, var, data, cache_root)
    worker = WorkerProcess(env, var / "worker.log", "test-worker-1@localhost")
    api = LiveAPI(url, redis_url, data, store=(var / "artifacts").as_uri())  # the worker's default store
    api.server.app.config["CHECKPOINT_DIR"] = var / "checkpoints"  # the worker's job files, as under `make run`
    api.env, api.var, api.worker, api.db_url, api.data_dir = env, var, worker, url, data
    with pytest.MonkeyPatch.context() as mp:  # the API reads job logs from the worker's disk, as on one machine
        mp.setenv("CNNLAB_CHECKPOINT_DIR", str(var / "checkpoints"))
        yield api
    api.close()
    worker.stop()
    drop_postgres_database(url)


@pytest.fixture(scope="session")
def moto(tmp_path_factory):
    """A local S3-compatible server (moto in server mode) with one bucket; `.url` is an s3:// store URL and
    `.env` the AWS_* variables that point s3fs at it."""
    server = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def example_nets(tmp_path_factory) -> Path:
    """The example package of own nets, pip-installed into a folder of its own (put it on sys.path to see it)."""
    return install_example_nets(tmp_path_factory.mktemp("example-nets"))


LAB_SETTINGS = {"CNNLAB_MODEL_PACKAGES": '["cnnlab-example-nets"]', "CNNLAB_NOTIFY_HOSTS": '["127.0.0.1"]',
                "CNNLAB_NOTIFY_RETRY_SECONDS": "1", "CNNLAB_DISPATCH_SECONDS": "1"}


@pytest.fixture(scope="session")
def lab_service(data_root, cache_root, example_nets, tmp_path_factory):
    """As `service`, with the example nets installed and allowed and webhooks to 127.0.0.1 allowed (retried after
    1 s, 2 s, ...), for the worker and the API alike; its own redis-server, so `service`'s worker never sees its
    jobs (job ids repeat across databases)."""
    broker = RedisServer(free_port())
    redis_url = broker.url
    url = new_postgres_database()
    migrate(url)
    var = tmp_path_factory.mktemp("lab-var")
    data = linked_data_dir(data_root, tmp_path_factory.mktemp("lab-data"))
    path = os.pathsep.join(p for p in (str(example_nets), os.environ.get("PYTHONPATH")) if p)
    env = service_env(url, redis_url, var, data, cache_root, PYTHONPATH=path, **LAB_SETTINGS)
    worker = WorkerProcess(env, var / "worker.log", "test-lab-worker@localhost")
    api = LiveAPI(url, redis_url, data, store=(var / "artifacts").as_uri())
    api.env, api.var, api.worker, api.db_url = env, var, worker, url
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(example_nets))
        for key, value in LAB_SETTINGS.items():
            mp.setenv(key, value)
        yield api
    api.close()
    worker.stop()
    broker.kill()
    drop_postgres_database(url)


@pytest.fixture
def receiver():
    """A webhook receiver answering 200 (set `.codes` to answer otherwise first)."""
    r = Receiver()
    yield r
    r.close()
