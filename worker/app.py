"""The Celery app the workers run (`celery -A worker.app worker`)."""

from __future__ import annotations

import logging
import threading
import time

from celery.signals import worker_init, worker_process_init, worker_ready, worker_shutting_down

from shared.lab.settings import settings
from shared.store import dispatch, fleet
from shared.store.db import forget_connections, session_scope
from shared.store.publish import make_celery
from shared.train.datasets import local_datasets
from worker import drain, notify, system, warm

app = make_celery()
app.conf.include = ["worker.tasks"]
log = logging.getLogger(__name__)
_me: list[str] = []  # this worker's node name, once it is ready
_stopping = threading.Event()  # set at shutdown: a draining worker takes no new job, so it heartbeats no more


def redispatch_lost() -> list[int]:
    """Send again the jobs whose broker message is lost (see shared/store/dispatch.py); never raises."""
    grace = settings().dispatch_seconds
    try:
        with session_scope() as s:
            return dispatch.redispatch(s, app, grace=grace)
    except Exception as exc:  # noqa: BLE001 - database or broker down: the next round tries again
        log.warning("could not look for lost jobs: %s", exc)
        return []


def heartbeat(name: str, queues: list[str]) -> None:
    """Tell the API what this worker serves, which datasets its trainers can load and how many GPUs it has
    (fleet.check_workers refuses the rest at submit); good for three rounds, so one late round does not drop it.
    Never raises."""
    env = settings()
    report = {"queues": queues, "datasets": local_datasets(env.data_dir, env.download), "data_dir": env.data_dir.name,
              "gpus": system.gpu_count()}
    try:
        fleet.announce(app.conf.broker_url, name, report, ttl=3 * env.dispatch_seconds + 5)
    except Exception as exc:  # noqa: BLE001 - broker down: the next round tries again
        log.warning("could not send the worker's heartbeat: %s", exc)


def _watch_dispatch(name: str, queues: list[str]) -> None:
    while True:
        if not _stopping.is_set():
            heartbeat(name, queues)
        redispatch_lost()
        notify.deliver_due()  # the ends no worker saw (a queued job cancelled at the API) and the retries
        time.sleep(settings().dispatch_seconds)


@worker_ready.connect
def on_ready(sender=None, **_):
    """Every worker heartbeats, watches for lost jobs (stored while the broker was down, lost with it, or orphaned)
    and sends due notifications."""
    name, queues = sender.hostname, sorted(app.amqp.queues.consume_from)
    _me[:] = [name]
    threading.Thread(target=_watch_dispatch, args=(name, queues), name="cnnlab-dispatch", daemon=True).start()


@worker_init.connect
def on_init(**_):
    drain.prepare()  # before the pool forks: the pipe that tells its processes to drain


@worker_shutting_down.connect
def on_shutdown(**_):
    """SIGTERM (or SIGINT, SIGQUIT): the pool processes drain (worker/drain.py); the worker counts no more."""
    drain.start()
    _stopping.set()
    for name in _me:
        try:
            fleet.withdraw(app.conf.broker_url, name)
        except Exception as exc:  # noqa: BLE001 - broker down: the heartbeat expires on its own
            log.warning("could not withdraw the worker's heartbeat: %s", exc)


@worker_process_init.connect
def on_fork(**_):
    forget_connections()  # a pool process must not share the parent's database connections
    drain.pool_process_ignores_sigterm()
    warm.prestart()  # this slot's trainer imports torch while the pool waits for its first job
