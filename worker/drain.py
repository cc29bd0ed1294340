"""Graceful drain: on SIGTERM a worker takes no new job, lets its running job finish or reach its next
checkpoint (at most CNNLAB_DRAIN_SECONDS), gives it back to the queue if it cannot, and starts no trainer.

The Celery main process stops consuming on SIGTERM (a warm shutdown) and writes one byte to a pipe that every
pool process inherits (also one forked during the shutdown), so `requested()` is true in all of them whether the
signal reached only the main process (`docker stop`) or the whole process group (Ctrl-C, systemd). A pool process
ignores SIGTERM while idle (the main process ends the pool once the running jobs are done) and, while it runs a
job, leaves the job to the supervisor's watch loop (worker/supervisor.py) instead of dying with it (the handler
is the slot's: worker/warm.py `running_job`).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import threading

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
