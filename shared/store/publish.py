"""Queue publishing: the Celery app's configuration (shared by the workers and the API) and `enqueue`."""

from __future__ import annotations

from functools import lru_cache

from celery import Celery

from shared.lab.settings import settings

TASK_RUN_JOB = "cnnlab.run_job"


def make_celery(broker: str | None = None) -> Celery:
    env = settings()
    broker = broker or env.broker_url
    app = Celery("cnnlab", broker=broker)
    # Redis redelivers an unacked task after this long; the job's DB lease, not this, guards against double runs.
    transport = {"visibility_timeout": env.visibility_timeout}
    if broker.startswith("redis"):
        # Ten priority lists per queue, 0 read first (see `redis_priority`).
        transport |= {"queue_order_strategy": "priority", "priority_steps": list(range(10)), "sep": ":"}
    elif broker.startswith("filesystem"):
        folder = env.var_dir / "broker"
        for sub in ("queue", "processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        transport |= {"data_folder_in": str(folder / "queue"), "data_folder_out": str(folder / "queue"),
                      "processed_folder": str(folder / "processed"), "store_processed": False,
                      "control_folder": str(folder / "control")}  # kombu's default is ./control
    app.conf.update(
        task_acks_late=True,  # a job's message is acked only when the task returns: a dead worker's job is redelivered
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,  # never reserve a second job while training one
        task_ignore_result=True,  # results live in the database
        task_default_queue="cpu",
        task_serializer="json",
        accept_content=["json"],
        broker_transport_options=transport,
        broker_connection_retry_on_startup=True,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        worker_send_task_events=True,  # task events on, so Flower (or `celery events`) can watch the fleet
        task_send_sent_event=True,
    )
    return app


@lru_cache(maxsize=4)
def client(broker: str | None = None) -> Celery:
    """A publishing-only app per broker URL, its connection pool reused across requests."""
    return make_celery(broker)


def redis_priority(priority: int) -> int:
    """API priority 0-9 (9 most urgent) -> kombu's Redis priority (0 read first)."""
    return 9 - max(0, min(9, priority))


# Fail fast when the broker is down: the job is stored, and a worker sends it again later.
RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}


def enqueue(job_id: int, queue: str, priority: int = 0, broker: str | None = None, app: Celery | None = None) -> None:
    """Publish the job id on its queue with its priority (through `app`, else a publishing client)."""
    app = app or client(broker or settings().broker_url)
    app.send_task(TASK_RUN_JOB, args=[job_id], queue=queue, priority=redis_priority(priority), retry=True,
                  retry_policy=RETRY_POLICY)
