"""The trainer's database reporter: uploads that lag behind the engine's pruning, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import threading

from sqlalchemy import select

from shared.store import artifacts
from shared.store.db import session_scope
from shared.store.jobs import create_job
from shared.store.models import Checkpoint
from shared.train import checkpoint
from worker.trainer import DbReporter


def test_a_checkpoint_pruned_while_its_upload_runs_is_still_recorded(db_url, data_root, tmp_path, monkeypatch):
    """The engine saves epoch N and prunes epoch N-2 at once; a writer that is still uploading epoch N-2 then (a slow
    store, a busy machine: epochs of 0.1 s did it) records it whole, and the store and database end with the
    newest two."""
    monkeypatch.setenv("CNNLAB_DATABASE_URL", db_url)
    monkeypatch.setenv("CNNLAB_ARTIFACT_STORE", (tmp_path / "store").as_uri())
    with session_scope(db_url) as s:
        job, _ = create_job(s, preset="mnist-fc", data_root=data_root)
        s.flush()
        job_id = job.id
    out = tmp_path / "scratch" / str(job_id)
    out.mkdir(parents=True)
    inside, go, upload_log = threading.Event(), threading.Event(), artifacts.upload_log

    def slow_upload_log(*args):  # the first upload stops midway until the engine has pruned its file
        if not inside.is_set():
            inside.set()
            go.wait(30)
        return upload_log(*args)

    monkeypatch.setattr(artifacts, "upload_log", slow_upload_log)
    reporter = DbReporter(job_id)
    reporter.keep = 2
    shas = {}
    for epoch in (1, 2, 3):
        path = checkpoint.path_for(out, epoch)
        path.write_bytes(hashlib.sha256(bytes([epoch])).digest() * 1000)
        shas[epoch] = hashlib.sha256(path.read_bytes()).hexdigest()
        reporter.on_checkpoint(epoch, path, shas[epoch])
        checkpoint.prune(out, epoch, 2)  # as the engine does right after on_checkpoint
        assert inside.wait(30)
    assert not checkpoint.path_for(out, 1).exists()  # pruned while its upload ran
    go.set()
    reporter.close()  # re-raises a failed write

    with session_scope(db_url) as s:
        rows = s.execute(select(Checkpoint.epoch, Checkpoint.key, Checkpoint.sha256)
                         .where(Checkpoint.job_id == job_id).order_by(Checkpoint.epoch)).all()
    assert [r.epoch for r in rows] == [2, 3]
    for r in rows:
        assert r.sha256 == shas[r.epoch]
        assert b"".join(artifacts.stream_verified(r.key, r.sha256)) == checkpoint.path_for(out, r.epoch).read_bytes()
    assert not artifacts.store().exists(artifacts.artifact_key(job_id, "epoch-001.pt"))
    assert not list(out.glob(".*.upload"))  # the second names are gone once uploaded


def test_the_log_says_why_the_evaluation_subset_is_smaller_than_eval_samples():
    from types import SimpleNamespace

    from shared.lab.specs import resolve
    from shared.train.evals import eval_plan
    from worker.trainer import held

    spec = resolve("mnist-cnn", {"train_limit": 5000})  # eval_samples 1,000; 5% of 5,000 samples is 250 images
    plan = eval_plan(spec, 5000, 10000)
    assert plan.subset == 200 < spec.eval_samples
    info = SimpleNamespace(spec=spec, eval_subset=plan.subset, data=SimpleNamespace(test_samples=10000))
    assert held(info).startswith(" (eval_samples 1,000 held to 200 by the evaluation budget")
    assert "set eval_every to evaluate on all 1,000" in held(info)
    small = SimpleNamespace(spec=spec, eval_subset=200, data=SimpleNamespace(test_samples=200))  # the split is 200
    assert held(small) == ""
