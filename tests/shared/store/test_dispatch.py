"""Lost broker messages are found and sent again once, on a real Redis database and real SQL databases."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import redis
from sqlalchemy import update
from support import REDIS_URL

from shared.store import dispatch
from shared.store.db import session_scope
from shared.store.jobs import create_job
from shared.store.models import Job, utcnow
from shared.store.publish import enqueue, make_celery


@pytest.fixture
def broker():
    """A Celery app on a Redis database no worker of the test session consumes, emptied before and after."""
    base, db = REDIS_URL.rsplit("/", 1)
    url = f"{base}/{int(db) - 1}"  # the fleet tests' database (15 -> 14); tests run one at a time
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield make_celery(url)
    client.flushdb()


def _job(db_url, data_root, age: float = 60.0, status: str = "queued") -> int:
    with session_scope(db_url) as s:
        job, _ = create_job(s, preset="mnist-fc", data_root=data_root)
        s.flush()
        s.execute(update(Job).where(Job.id == job.id).values(
            status=status, dispatched_at=utcnow() - timedelta(seconds=age), heartbeat_at=utcnow() - timedelta(hours=1)))
        return job.id


def test_a_job_whose_message_is_lost_is_sent_once(db_url, data_root, broker):
    lost, waiting = _job(db_url, data_root), _job(db_url, data_root)
    enqueue(waiting, "cpu", app=broker)  # its message is still in the broker
    with session_scope(db_url) as s:  # other tests' jobs may share the database: look at these two only
        sent = dispatch.redispatch(s, broker, grace=10)
    assert lost in sent and waiting not in sent
    assert dispatch.broker_job_ids(broker, recent=10) >= {lost, waiting}
    with session_scope(db_url) as s:  # a second watcher, even one that looks in the same round, sends nothing again
        assert not {lost, waiting} & set(dispatch.redispatch(s, broker, grace=10, every_round=True))


def test_one_watcher_of_the_fleet_looks_each_round(db_url, data_root, broker):
    lost = _job(db_url, data_root)
    assert dispatch.round_is_ours(broker, grace=1)  # this watcher's round; its key expires after 0.8 s
    assert not dispatch.round_is_ours(broker, grace=1)
    with session_scope(db_url) as s:  # another watcher in the same round leaves the lost job alone
        assert lost not in dispatch.redispatch(s, broker, grace=1)
    time.sleep(0.9)
    with session_scope(db_url) as s:  # the next round is whoever asks first
        assert lost in dispatch.redispatch(s, broker, grace=1)


def test_a_job_delivered_to_a_worker_is_its_own_for_one_lease(db_url, data_root, broker):
    """A worker that received a job but has not claimed it yet (a slow start) keeps it for a lease's time."""
    job = _job(db_url, data_root)
    enqueue(job, "cpu", app=broker)
    with broker.connection_for_read() as conn, conn.SimpleQueue("cpu") as queue:
        message = queue.get(timeout=10)  # delivered, not acked: kombu keeps it in its unacked hash
        time.sleep(1.0)  # longer ago than a round, within a lease
        with session_scope(db_url) as s:
            assert job not in dispatch.redispatch(s, broker, grace=0.5, lease=60, every_round=True)
        with session_scope(db_url) as s:  # a lease of 0.5 s is over: its worker is taken to be gone
            assert job in dispatch.redispatch(s, broker, grace=0.5, lease=0.5, every_round=True)
        message.ack()


def test_a_recent_dispatch_is_not_doubled_and_a_dead_lease_is_sent_again(db_url, data_root, broker):
    fresh = _job(db_url, data_root, age=1.0)  # sent a second ago: its message may still be in flight
    orphan = _job(db_url, data_root, status="running")  # running, lease long dead, no message anywhere
    with session_scope(db_url) as s:
        sent = dispatch.redispatch(s, broker, grace=10, lease=5, every_round=True)
    assert orphan in sent and fresh not in sent


def test_only_one_of_two_watchers_takes_a_job(db_url, data_root):
    job = _job(db_url, data_root)
    with session_scope(db_url) as a, session_scope(db_url) as b:
        assert [dispatch.take(a, job, grace=10), dispatch.take(b, job, grace=10)] == [True, False]


def test_unlistable_brokers_fall_back_to_the_age_of_the_last_dispatch(db_url, data_root, tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_VAR_DIR", str(tmp_path))
    app = make_celery("filesystem://")
    old, fresh = _job(db_url, data_root, age=60), _job(db_url, data_root, age=1)
    assert dispatch.broker_job_ids(app, recent=10) is None
    with session_scope(db_url) as s:
        sent = dispatch.redispatch(s, app, grace=10)
    assert old in sent and fresh not in sent


def test_only_an_unreachable_or_busy_database_is_waited_out(tmp_path):
    """A missing table is a mistake to report at once; a locked SQLite file or a refused connection is waited out."""
    import sqlite3
    import time as clock

    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    from shared.store.db import retry, transient

    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    t = clock.monotonic()
    with pytest.raises(OperationalError, match="no such table"):
        retry(lambda s: s.execute(text("SELECT * FROM jobs")), url=empty, seconds=30)
    assert clock.monotonic() - t < 5
    assert transient(OperationalError("x", {}, sqlite3.OperationalError("database is locked")))
    refused = "postgresql+psycopg://postgres@127.0.0.1:1/nothing"
    t = clock.monotonic()
    with pytest.raises(OperationalError):
        retry(lambda s: s.execute(text("SELECT 1")), url=refused, seconds=2)
    assert clock.monotonic() - t >= 1.5  # tried again with backoff before giving up
