"""A job's log over HTTP: the text so far, followed until the job ends, or as server-sent events.

Where the text comes from is shared/store/logs.py `read_log`, the one reader (this machine's disk, else the
artifact store).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

from flask import Blueprint, Response, current_app, request, stream_with_context

from api.db import session
from api.schemas.fields import MAX_ID
from api.schemas.logs import LogQuery
from shared.store import jobs, logs
from shared.store.db import session_scope
from shared.store.models import JobStatus

bp = Blueprint("logs", __name__)
KEEPALIVE_SECONDS = 15.0  # an SSE comment this often while nothing is written: proxies keep the stream, and a
# client that left is noticed at the next write
STATUS_POLL_SECONDS = 1.0  # how often a follow asks the database whether the job ended


def _status(db_url: str, job_id: int) -> str:
    with session_scope(db_url) as s:
        return jobs.get_job(s, job_id).status


class _Watch:
    """Whether the job has ended, asking the database at most once a STATUS_POLL_SECONDS."""

    def __init__(self, db_url: str, job_id: int, status: str):
        self.db_url, self.job_id, self.status, self.asked = db_url, job_id, status, time.monotonic()

    def __call__(self) -> bool:
        if not JobStatus(self.status).finished and time.monotonic() - self.asked >= STATUS_POLL_SECONDS:
            self.status, self.asked = _status(self.db_url, self.job_id), time.monotonic()
        return JobStatus(self.status).finished


@bp.get(f"/jobs/<int(max={MAX_ID}):job_id>/log")
def get_log(job_id: int):
    q = LogQuery.model_validate(request.args.to_dict())
    with session() as s:
        status = jobs.get_job(s, job_id).status  # 404 for an unknown job
    watch = _Watch(current_app.config["DATABASE_URL"], job_id, status)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # no proxy buffering of a live stream
    if request.accept_mimetypes.best == "text/event-stream":
        start = _last_event_id()
        if start and watch() and not logs.read_log(job_id, start, store_url=_store()).text:
            return Response(status=204)  # an EventSource back after the end: 204 tells it to stop reconnecting
        return Response(stream_with_context(_events(job_id, watch, start)), mimetype="text/event-stream",
                        headers=headers)
    if not q.follow:
        return Response(_whole(job_id), mimetype="text/plain", headers=headers)
    # an empty chunk sends the headers, and nothing else
    chunks = (c.text for c in logs.follow_log(job_id, watch, store_url=_store()))
    return Response(stream_with_context(chunks), mimetype="text/plain", headers=headers)


def _whole(job_id: int) -> str:
    parts, chunk = [], logs.read_log(job_id, store_url=_store())
    while chunk.text:
        parts.append(chunk.text)
        chunk = logs.read_log(job_id, chunk.end, store_url=_store())
    return "".join(parts)


def _store() -> str:
    return current_app.config["ARTIFACT_STORE"]


def _last_event_id() -> int:
    """An EventSource that reconnects sends the last event's id: the byte offset to go on from."""
    raw = request.headers.get("Last-Event-ID", "")
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 16 else 0


def _events(job_id: int, watch: _Watch, start: int) -> Iterator[str]:
    """One `data:` event per log line (its `id:` the offset after it), keep-alives, then `event: end`."""
    yield "retry: 2000\n\n"
    quiet = time.monotonic()
    for chunk in logs.follow_log(job_id, watch, start=start, store_url=_store()):
        if not chunk.text:
            if time.monotonic() - quiet >= KEEPALIVE_SECONDS:
                quiet = time.monotonic()
                yield ": keep-alive\n\n"
            continue
        quiet, offset = time.monotonic(), chunk.start
        lines = chunk.text.splitlines()
        for i, line in enumerate(lines):
            offset = chunk.end if i == len(lines) - 1 else offset + len(line.encode()) + 1
            yield f"id: {offset}\ndata: {line}\n\n"
    yield f"event: end\ndata: {json.dumps({'status': watch.status})}\n\n"
