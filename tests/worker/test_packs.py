"""A sweep's jobs that differ only in per-member fields (seeds, lr) claimed together and trained as one pack by a
warm trainer (CNNLAB_PACK_SEEDS=always)."""

from __future__ import annotations

import pytest
from support import (
    LiveAPI,
    WorkerProcess,
    drop_postgres_database,
    private_backends,
    service_env,
)

from shared.store.db import session_scope
from shared.store.models import Result

SMALL = {"train_limit": 600, "test_limit": 200}


@pytest.fixture
def packing(data_root, cache_root, tmp_path):
    url, broker = private_backends()
    env = service_env(url, broker, tmp_path, data_root, cache_root, CNNLAB_PACK_SEEDS="always")
    worker = WorkerProcess(env, tmp_path / "worker.log", "packer@localhost")
    api = LiveAPI(url, broker, data_root, store=(tmp_path / "artifacts").as_uri())  # the worker's default store
    yield api, url, tmp_path
    api.close()
    worker.stop()
    drop_postgres_database(url)


def test_a_learning_rate_sweeps_seeds_train_as_one_pack_each_with_its_own_result(packing):
    api, url, var = packing
    sweep = api.post("/sweeps", json={"name": "pack", "base": {"preset": "mnist-fc", "overrides": SMALL},
                                      "grid": {"lr": [0.01, 0.05]}, "seeds": [0, 1]}).json()
    ids = sorted(j["id"] for j in api.get(f"/jobs?sweep_id={sweep['id']}").json()["items"])
    jobs = [api.wait(i) for i in ids]
    assert [j["status"] for j in jobs] == ["succeeded"] * 4 and {j["attempts"] for j in jobs} == {1}, jobs
    assert len({j["worker"] for j in jobs}) == 1  # claimed together by one slot
    with session_scope(url) as s:
        details = [s.get(Result, i).details for i in ids]
    packs = [d["pack"] for d in details]
    assert all(d["artifacts"]["samples"]["png"] and "artifacts_error" not in d for d in details)  # drawn from each member
    assert {tuple(sorted(p["jobs"])) for p in packs} == {tuple(ids)}
    assert len({p["train_seconds"] for p in packs}) == 1  # the pack's shared training time
    for i in ids:  # each its own metrics and checkpoint
        assert [m["epoch"] for m in api.get(f"/jobs/{i}/metrics").json()["epochs"]] == [1]
        assert api.get(f"/jobs/{i}/checkpoints/1").status_code == 200
    assert "train as one pack" in (var / "checkpoints" / str(ids[0]) / "log.txt").read_text()
    alone = api.post("/jobs", json={"preset": "mnist-fc", "overrides": {**SMALL, "lr": 0.01, "seed": 1}}).json()
    solo = api.wait(alone["id"])
    assert abs(solo["result"]["test_accuracy"] - jobs[1]["result"]["test_accuracy"]) <= 0.003  # as if alone
    fast = api.wait(api.post("/jobs", json={"preset": "mnist-fc", "overrides": {**SMALL, "lr": 0.05, "seed": 0}}
                             ).json()["id"])
    assert abs(fast["result"]["test_accuracy"] - jobs[2]["result"]["test_accuracy"]) <= 0.003  # its own lr
