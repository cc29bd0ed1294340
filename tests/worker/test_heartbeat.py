"""Workers' heartbeats say which datasets they hold: a job on a dataset no live worker of its queue has is refused
at submit (422 naming `dataset`), instead of being accepted and failing when it runs (issue 21, item 8)."""

from __future__ import annotations

import time

import pytest
from support import LiveAPI, WorkerProcess, drop_postgres_database, linked_data_dir, private_backends, service_env

from shared.lab.specs import SpecError
from shared.store import fleet


@pytest.fixture
def backends():
    """A database and a Redis database of this module's own: the session's worker heartbeats into the shared one."""
    url, broker = private_backends()
    yield url, broker
    drop_postgres_database(url)


@pytest.fixture
def pg_url(backends):
    return backends[0]


@pytest.fixture
def redis_url(backends):
    return backends[1]


@pytest.fixture
def api(pg_url, redis_url, data_root, tmp_path):
    """The API on its own database; nothing consumes the broker until a test starts a worker."""
    live = LiveAPI(pg_url, redis_url, data_root)
    yield live
    live.close()


def _reports_clear() -> None:
    fleet._reports.clear()  # the API remembers the heartbeats CACHE_SECONDS: the tests ask afresh


def test_a_dataset_no_live_worker_has_is_refused_naming_where_it_was_looked_for(api, pg_url, redis_url, data_root,
                                                                                cache_root, tmp_path):
    # The test data (MNIST, cifar10-jpeg) has no original CIFAR-10 release: cifar10-lenet cannot run on this worker.
    (tmp_path / "worker-data").mkdir()
    data = linked_data_dir(data_root, tmp_path / "worker-data")
    env = service_env(pg_url, redis_url, tmp_path / "var", data, cache_root, CNNLAB_DISPATCH_SECONDS="1")
    worker = WorkerProcess(env, tmp_path / "worker.log", "held@localhost", queues="cpu")
    try:
        deadline = time.monotonic() + 30
        while not any(w["name"] == "held@localhost" for w in fleet.reports(redis_url) or []):
            assert time.monotonic() < deadline, "no heartbeat from the worker"
            _reports_clear()
            time.sleep(0.2)
        beat = next(w for w in fleet.reports(redis_url) if w["name"] == "held@localhost")
        assert beat["queues"] == ["cpu"] and {"mnist", "cifar10-jpeg"} <= set(beat["datasets"])
        assert "cifar10" not in beat["datasets"] and beat["data_dir"] == "worker-data"
        assert beat["gpus"] == 0  # a CPU worker: fleet.check_gpus refuses world_size > 1 on CUDA for its queues

        r = api.post("/jobs", json={"preset": "cifar10-lenet"})
        assert r.status_code == 422, r.text
        detail = r.json()["error"]["details"][0]
        assert detail["field"] == "dataset" and "cifar-10-batches-py" in detail["message"], detail
        assert "worker-data" in detail["message"] and str(tmp_path) not in r.text  # the directory's name, no path
        r = api.post("/sweeps", json={"base": {"preset": "cifar10-lenet"}, "grid": {"lr": [0.01, 0.02]}, "seeds": 1})
        assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "dataset", r.text
        ok = api.post("/jobs", json={"preset": "cifar10-lenet", "overrides": {"dataset": "cifar10-jpeg",
                                                                              "train_limit": 100, "test_limit": 100}})
        assert ok.status_code == 201, ok.text
    finally:
        worker.stop()
    _reports_clear()
    # a stopping worker withdraws its heartbeat (other tests' workers may share this Redis database)
    assert not any(w["name"] == "held@localhost" for w in fleet.reports(redis_url) or [])
    r = api.post("/jobs", json={"preset": "cifar10-lenet"})
    assert r.status_code == 201, r.text  # no live worker: accepted, it waits for one that may have the data


def test_a_heartbeat_counts_until_it_expires_and_only_for_its_queues(redis_url):
    fleet.announce(redis_url, "gpu-box@lab", {"queues": ["gpu"], "datasets": ["mnist"], "data_dir": "data"}, ttl=1)
    _reports_clear()
    fleet.check_dataset(redis_url, "cpu", "cifar10")  # no live cpu worker: accepted
    with pytest.raises(SpecError) as refused:
        fleet.check_dataset(redis_url, "gpu", "cifar10")
    assert refused.value.errors[0]["field"] == "dataset" and "CNNLAB_DOWNLOAD=1" in refused.value.errors[0]["message"]
    fleet.check_dataset(redis_url, "gpu", "mnist")
    time.sleep(1.1)
    _reports_clear()
    fleet.check_dataset(redis_url, "gpu", "cifar10")  # expired: that worker no longer counts
    assert fleet.reports(redis_url) == []
