"""The queue page: queues and their depth, the live workers and what each runs, the waiting jobs in order."""

from __future__ import annotations

from flask import Blueprint, current_app, request

from api.db import session
from api.errors import APIError
from api.http import wants_html
from api.pages.queues import queue_page
from api.schemas.queues import QueueOverview, QueueState, QueueWorker, WaitingJob
from shared.store import fleet

bp = Blueprint("queues", __name__)
REASONS = 10  # waiting jobs per queue whose reason is given (a few queries each)


def overview() -> QueueOverview:
    """The queues as the database (depth, order) and the workers (who is alive, what each runs) see them."""
    broker = current_app.config["BROKER_URL"]
    workers = fleet.live_workers(broker)
    with session() as s:
        depths = fleet.depths(s)
        waiting, seen = [], {}
        for job in fleet.waiting(s):
            seen[job.queue] = seen.get(job.queue, 0) + 1
            reason = fleet.explain_wait(s, job, broker, workers) if seen[job.queue] <= REASONS else None
            waiting.append(WaitingJob(id=job.id, name=job.name, queue=job.queue, priority=job.priority,
                                      position=seen[job.queue], preset=job.preset, model=job.model,
                                      dataset=job.dataset, created_at=job.created_at, reason=reason))
    live = workers or []
    queues = [QueueState(name=q, depth=n, workers=[w.name for w in live if q in w.queues]) for q, n in depths.items()]
    return QueueOverview(workers_known=workers is not None, queues=queues, waiting=waiting,
                         workers=[QueueWorker(name=w.name, queues=w.queues, running=w.running) for w in live])


@bp.get("/queue")
def queue():
    """JSON for clients, HTML when a browser asks (as /sweeps and /studies do); `?format=json` forces JSON."""
    fmt = request.args.get("format")
    if fmt not in (None, "json"):
        raise APIError(422, f"format: only 'json' is known (got {fmt!r}); without it, the Accept header decides")
    data = overview().model_dump(mode="json")
    if fmt != "json" and wants_html():
        return queue_page(data)
    return data
