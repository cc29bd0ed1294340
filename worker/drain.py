"""Graceful drain: on SIGTERM a worker takes no new job, lets its running job finish or reach its next
checkpoint (at most CNNLAB_DRAIN_SECONDS), gives it back to the queue if it cannot, and starts no trainer.

Preemption takes the same path: a running job that a queued job of priority CNNLAB_PREEMPT_PRIORITY or more waits
behind (shared.store.fleet.preemptions) yields at its next checkpoint, is queued again (its attempt not counted)
and resumes from that checkpoint once a worker is free (`Yielding`).

The Celery main process stops consuming on SIGTERM (a warm shutdown) and writes one byte to a pipe that every
pool process inherits (also one forked during the shutdown), so `requested()` is true in all of them whether the
signal reached only the main process (`docker stop`) or the whole process group (Ctrl-C, systemd). A pool process
ignores SIGTERM while idle (the main process ends the pool once the running jobs are done) and, while it runs a
job, leaves the job to the supervisor's watch loop (worker/supervisor.py) instead of dying with it (the handler
is the slot's: worker/warm.py `running_job`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import threading
import time

from shared.lab.settings import settings
from shared.store import fleet, jobs
from shared.store.db import DatabaseError, session_scope

log = logging.getLogger(__name__)
PREEMPT_GRACE_SECONDS = 2.0  # a job queued this long was not taken by a free worker: its queue is busy

_channel: tuple[int, int] | None = None  # (read end, write end), made by the main process before the pool forks
_told = threading.Event()  # this process got SIGTERM itself


def prepare() -> None:
    """In the main process, before the pool starts: the pipe its pool processes will watch."""
    global _channel
    if _channel is None:
        _channel = os.pipe()


def requested() -> bool:
    """Whether this worker drains: its main process said so, or this process got SIGTERM."""
    if _told.is_set():
        return True
    if _channel is None:
        return False
    return bool(select.select([_channel[0]], [], [], 0)[0])  # the byte is never read: readable for every process


def start() -> None:
    """In the main process: every pool process, present and future, now drains (idempotent)."""
    _told.set()
    if _channel is not None:
        with contextlib.suppress(OSError):
            os.write(_channel[1], b"x")


def pool_process_ignores_sigterm() -> None:
    """In a fresh pool process: SIGTERM must not kill it (billiard keeps a signal that is ignored as it is)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def start_here() -> bool:
    """This process got SIGTERM itself: it drains, whatever its main process says. Whether that is news."""
    news = not _told.is_set()
    _told.set()
    return news


class Yielding:
    """Whether a running job gives its slot back now: while the worker drains, once it has had its chance (a new
    checkpoint, or CNNLAB_DRAIN_SECONDS); while a job of higher priority waits behind it, at its next checkpoint."""

    def __init__(self, job_id: int):
        self.job_id = job_id
        self.since: float | None = None  # monotonic time the drain, or the waiting job, was first seen
        self.epoch = 0  # the newest checkpoint's epoch then
        self.why = ""  # what the yield is for, in words

    def enough(self) -> bool:
        draining = requested()
        try:
            with session_scope() as s:
                urgent = None if draining else fleet.preemptor(s, self.job_id, PREEMPT_GRACE_SECONDS)
                if not (draining or urgent):
                    self.since = None  # nobody waits (any more): no yield pending
                    return False
                epoch = getattr(jobs.latest_checkpoint(s, self.job_id), "epoch", 0)
                why = "the worker drains" if draining else f"job {urgent.id} (priority {urgent.priority}) waits"
                last = (jobs.get_job(s, self.job_id).progress or {}).get("epochs")  # its final epoch, if known
        except DatabaseError:  # a database blip: count the time only
            if self.since is None:
                return False
            epoch, why, last = self.epoch, self.why, None
        if not draining and last is not None and epoch >= last:
            return False  # its final checkpoint: it is saving its result, yielding now would only redo that
        if self.since is None or why != self.why:
            self.since, self.epoch, self.why = time.monotonic(), epoch, why
            log.warning("job %s: %s; yielding at its next checkpoint%s", self.job_id, why,
                        f" (at most {settings().drain_seconds}s)" if draining else "")
            return False
        return epoch > self.epoch or (draining and time.monotonic() - self.since > settings().drain_seconds)
