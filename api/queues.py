"""The queue page: queues and their depth, the live workers and what each runs, the waiting jobs in order."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request

from api import session
from api.schemas import QueueOverview, QueueState, QueueWorker, WaitingJob
from shared.store import fleet

bp = Blueprint("queues", __name__)


def overview() -> QueueOverview:
    """The queues as the database (depth, order) and the workers (who is alive, what each runs) see them."""
    workers = fleet.live_workers(current_app.config["BROKER_URL"])
    with session() as s:
        depths = fleet.depths(s)
        waiting, seen = [], {}
        for job in fleet.waiting(s):
            seen[job.queue] = seen.get(job.queue, 0) + 1
            waiting.append(WaitingJob(id=job.id, name=job.name, queue=job.queue, priority=job.priority,
                                      position=seen[job.queue], preset=job.preset, model=job.model,
                                      dataset=job.dataset, created_at=job.created_at))
    live = workers or []
    queues = [QueueState(name=q, depth=n, workers=[w.name for w in live if q in w.queues]) for q, n in depths.items()]
    return QueueOverview(workers_known=workers is not None, queues=queues, waiting=waiting,
                         workers=[QueueWorker(name=w.name, queues=w.queues, running=w.running) for w in live])


@bp.get("/queue")
def queue():
    """HTML for people; `?format=json` (or Accept: application/json) for clients."""
    data = overview().model_dump(mode="json")
    wants_json = request.args.get("format") == "json" or \
        request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json"
    if wants_json:
        return data
    return render_template("queue.html", **data)
