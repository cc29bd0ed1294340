"""A job's run-time limits, checked by the supervisor on every heartbeat: wall time (`max_minutes`) and the
resident memory of its training processes (`memory_gb`, else its queue's CNNLAB_QUEUE_MEMORY_GB).

A run past either is killed (its whole process group) and the job fails with the limit in its error: the job
asked for too much, so it is not retried.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from shared.lab.settings import settings
from shared.lab.specs import Spec
from shared.store.jobs import queue_for
from worker.processes import group_rss_mb


@dataclass
class Limits:
    """One attempt's limits; `breach(pgid)` says which was passed, in words, or None."""

    max_seconds: float | None
    memory_gb: float | None
    started: float = field(default_factory=time.monotonic)

    @classmethod
    def of(cls, spec: Spec) -> "Limits":
        memory = spec.memory_gb or settings().queue_memory_gb.get(queue_for(spec))
        return cls(max_seconds=spec.max_minutes * 60 if spec.max_minutes else None, memory_gb=memory)

    def breach(self, pgid: int) -> str | None:
        elapsed = time.monotonic() - self.started
        if self.max_seconds is not None and elapsed > self.max_seconds:
            return (f"the run took longer than its wall-time limit, max_minutes={self.max_seconds / 60:g} "
                    f"({elapsed / 60:.2f} minutes): stopped")
        used = group_rss_mb(pgid) / 1024  # GiB, as the queue's memory and the submit-time estimate count
        if self.memory_gb is not None and used > self.memory_gb:
            return (f"the training processes used {used:.2f} GB of memory, above the job's limit of "
                    f"{self.memory_gb:g} GB (memory_gb, else CNNLAB_QUEUE_MEMORY_GB): stopped")
        return None
