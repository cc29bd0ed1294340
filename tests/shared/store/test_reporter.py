"""The trainer's writes (shared.store.reporter) on SQLite and PostgreSQL: sent whole, pruned, and stored typed."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from shared.lab.results import Environment, ResultDetails, RunSummary
from shared.store import reporter
from shared.store.db import session_scope
from shared.store.jobs import create_job, result_details
from shared.store.models import Checkpoint, Job


@pytest.fixture
def job_id(db_url, data_root, monkeypatch):
    monkeypatch.setenv("CNNLAB_DATABASE_URL", db_url)
    with session_scope(db_url) as s:
        job, _ = create_job(s, preset="mnist-fc", data_root=data_root)
        s.flush()
        return job.id


def test_checkpoint_rows_are_recorded_and_pruned_in_one_write(db_url, job_id):
    for epoch in (1, 2, 3):
        write = reporter.checkpoint_uploaded(job_id, epoch, f"jobs/{job_id}/epoch-{epoch:03d}.pt", f"{epoch:064x}", 10,
                                             prune_through=epoch - 2 if epoch > 2 else None)
        reporter.send(write, what="a test")
    with session_scope(db_url) as s:
        assert list(s.scalars(select(Checkpoint.epoch).where(Checkpoint.job_id == job_id)
                              .order_by(Checkpoint.epoch))) == [2, 3]


def test_a_row_already_written_fails_a_first_send(db_url, job_id):
    """Only a retry (after a lost commit) takes an existing row as written: a first duplicate is a real error."""
    reporter.send(reporter.step_loss(job_id, 1, 10, 10, 0.5, 640), what="a test")
    with pytest.raises(IntegrityError):
        reporter.send(reporter.step_loss(job_id, 1, 10, 10, 0.5, 640), what="a test")


def test_a_result_is_stored_as_typed_details_and_read_back(db_url, job_id):
    summary = RunSummary(test_accuracy=0.9, test_loss=0.3, params=100, epochs=1, train_seconds=2.0,
                         samples_per_second=50.0, data={"classes": ["a", "b"]}, environment=Environment())
    details = ResultDetails(confusion=[[4, 1], [0, 5]], artifacts_error="RuntimeError: no images")
    done = {"phase": "done", "epoch": 1, "epochs": 1, "fraction": 1.0}
    for _ in range(2):  # an upsert: sent again (a lost commit's retry), the same one row
        reporter.save_result(job_id, summary, details, done)
    with session_scope(db_url) as s:
        job = s.get(Job, job_id)
        assert result_details(job) == details and job.progress == done and job.result.test_accuracy == 0.9
        assert set(job.result.details) == {"confusion", "artifacts_error"}  # defaults are not stored
