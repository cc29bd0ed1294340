"""A job's log: where it is and how it is read, in one place.

The log is `log.txt` in the job's directory on the worker's disk (worker/jobfiles.py), live while the job runs;
the worker uploads it to the artifact store with each checkpoint and at the end of each attempt. `read_log` is the
only reader: the file on this machine's disk when there is one (the API beside its worker, or a shared
CNNLAB_CHECKPOINT_DIR), else the store's copy (an API on another machine: as of the last upload).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from shared.lab.settings import settings
from shared.store import artifacts

LOG_NAME = "log.txt"
MAX_CHUNK = 1 << 20  # bytes read at once (1 MiB): a long log streams in pieces


@dataclass(frozen=True)
class LogChunk:
    """Text of a job's log from byte `start`; `end` is where the next read starts."""

    text: str
    start: int
    end: int


def job_dir(job_id: int) -> Path:
    """A job's files on the worker that runs it (its log, checkpoints, stop and error files)."""
    return settings().checkpoint_dir / str(job_id)


def read_log(job_id: int, start: int = 0, whole_lines: bool = False, store_url: str | None = None) -> LogChunk:
    """The log from byte `start` (at most MAX_CHUNK bytes); with `whole_lines`, only up to the last newline, so a line
    still being written (or a character cut in two) waits for the next read. No log yet: empty text."""
    try:
        with _open(job_id, store_url) as f:
            _skip(f, start)
            data = f.read(MAX_CHUNK)
    except (FileNotFoundError, artifacts.MissingArtifact):
        data = b""
    if whole_lines and data:
        data = data[: data.rfind(b"\n") + 1]
    return LogChunk(data.decode("utf-8", errors="replace"), start, start + len(data))


def _skip(f, start: int) -> None:
    """Go to byte `start`: seek where the file can (a disk, S3), else read past it (the database store's chunks)."""
    try:
        f.seek(start)
    except (OSError, ValueError):
        f.read(start)


def _open(job_id: int, store_url: str | None):
    """This machine's copy if it has one (live), else the artifact store's (as last uploaded)."""
    local = job_dir(job_id) / LOG_NAME
    return open(local, "rb") if local.is_file() else artifacts.open_artifact(job_id, LOG_NAME, store_url)


def follow_log(job_id: int, finished: Callable[[], bool], start: int = 0, poll: float = 0.5,
               store_url: str | None = None) -> Iterator[LogChunk]:
    """The log's whole lines as they are written, until `finished()` and everything is read (the last line then
    even without its newline). A poll that finds nothing new yields an empty chunk: the caller's chance to send a
    keep-alive (and to notice a client that left)."""
    offset = start
    while True:
        done = finished()  # asked before reading: what the job wrote before it ended is read below
        chunk = read_log(job_id, offset, whole_lines=not done, store_url=store_url)
        if chunk.text:
            offset = chunk.end
            yield chunk
            continue
        if done:
            return
        yield chunk
        time.sleep(poll)
