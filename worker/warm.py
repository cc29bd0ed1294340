"""Warm trainers: one long-lived trainer process per worker slot, handed one job after another.

The supervisor (in the Celery pool process) and the trainer (`python -m worker.serve FD`, a fresh interpreter,
so CUDA is never touched in the Celery process) talk over a socketpair, one JSON message per frame:

    trainer -> supervisor   {"kind": "ready", "pid": P}            torch, the engine and torch._dynamo imported
    supervisor -> trainer   {"kind": "job", "job_id": J, "resume": [CKPT, SHA256] | null, "pack": [J2, ...]}
    trainer -> supervisor   {"kind": "started", "job_id": J}       its output now goes to the job's log.txt
    trainer -> supervisor   {"kind": "done", "job_id": J, "code": C, "codes": {J: C, J2: C2, ...}}
                                                                   0 done, EXIT_STOPPED cancelled, 1 failed
    supervisor -> trainer   {"kind": "size", "spec": {...}}        before a job, when admission is measured
    trainer -> supervisor   {"kind": "sized", "shared_bytes": S, "member_bytes": M}   (null: it cannot say)

A job with a `pack` trains with those cell mates as one run of several seeds (shared.train.packs); `codes` has
each member's code.

A trainer is used again only after a job that succeeded while its memory stayed under the bound; any other
ending (failure, cancel, crash, hang, lost lease) kills it and the slot starts a fresh one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Literal

from pydantic import BaseModel, TypeAdapter

from shared.lab.settings import settings
from worker import drain
from worker.processes import die_with_parent, kill_group, rss_mb

log = logging.getLogger(__name__)
EXIT_SILENT = 1  # reported for a trainer that exited with status 0 without saying the job was done


class Ready(BaseModel):
    kind: Literal["ready"] = "ready"
    pid: int


class Hand(BaseModel):
    kind: Literal["job"] = "job"
    job_id: int
    resume: tuple[str, str] | None = None  # checkpoint path and its sha256
    pack: list[int] = []  # cell mates trained with this job as one pack (never with a resume)


class Started(BaseModel):
    kind: Literal["started"] = "started"
    job_id: int


class Done(BaseModel):
    kind: Literal["done"] = "done"
    job_id: int
    code: int
    codes: dict[int, int] = {}  # each pack member's code


class Size(BaseModel):
    kind: Literal["size"] = "size"
    spec: dict  # a stored spec: the trainer estimates its memory (shared.train.memory.job_need)
    ask: int = 0  # echoed in the answer: a late answer to an earlier question is not taken for this one's


class Sized(BaseModel):
    kind: Literal["sized"] = "sized"
    ask: int = 0  # the question's
    shared_bytes: int | None = None  # the dataset, once per pack; None when the job cannot be sized here
    member_bytes: int | None = None  # each member's weights, gradients, optimizer state and activations


Message = TypeAdapter(Ready | Hand | Started | Done | Size | Sized)


def send(conn: Connection, msg: BaseModel) -> None:
    conn.send_bytes(msg.model_dump_json().encode())


def receive(conn: Connection) -> Ready | Hand | Started | Done | Size | Sized:
    return Message.validate_json(conn.recv_bytes())


class WarmTrainer:
    """The supervisor's side of one trainer process."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        with ours, theirs:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "worker.serve", str(theirs.fileno())], pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=die_with_parent())
            self.conn = Connection(os.dup(ours.fileno()))  # the Connection owns (and closes) its own fd
        self.job_id: int | None = None
        self.codes: dict[int, int] = {}  # the last pack's code per member
        self.died: int | None = None  # exit status once the process is gone
        self.asked = 0  # size questions sent (each answer echoes its number)

    def alive(self) -> bool:
        return self.died is None and self.proc.poll() is None

    def hand(self, job_id: int, resume: list[str], pack: list[int] = ()) -> None:
        """Give it a job, or a pack led by it (it starts as soon as it is warm); OSError if the process is gone."""
        self.job_id, self.codes = job_id, {}
        send(self.conn, Hand(job_id=job_id, resume=tuple(resume) if resume else None, pack=list(pack)))

    def size(self, spec: dict, timeout: float = 120.0) -> Sized | None:
        """The memory `spec` needs on this trainer (it answers once warm, within `timeout` s); None if it is gone."""
        self.asked += 1
        try:
            send(self.conn, Size(spec=spec, ask=self.asked))
            deadline = time.monotonic() + timeout
            while self.conn.poll(max(0.0, deadline - time.monotonic())):
                msg = receive(self.conn)
                if isinstance(msg, Sized) and msg.ask == self.asked:
                    return msg
        except (EOFError, OSError):
            self._gone()
        return None  # `ready` came and went; no answer in time: a trainer that cannot say

    def wait(self, timeout: float | None) -> int | None:
        """The job's code once it is done, None while it runs; a nonzero code when the process died meanwhile."""
        while self.died is None:
            try:
                if not self.conn.poll(timeout):
                    return None
                msg = receive(self.conn)
            except (EOFError, OSError):
                return self._gone()
            if isinstance(msg, Done) and msg.job_id == self.job_id:
                self.job_id, self.codes = None, msg.codes
                return msg.code
            # `ready` and `started` only say it is working: keep waiting for `done`
        return self.died or EXIT_SILENT  # killed by the supervisor

    def _gone(self) -> int:
        self.died = self.proc.wait()
        log.warning("trainer %s died during job %s with status %s", self.proc.pid, self.job_id, self.died)
        return self.died or EXIT_SILENT

    def kill(self) -> None:
        """End the process and everything it started; the slot starts another."""
        kill_group(self.proc)
        self.died = self.proc.wait()
        self.conn.close()

    def fit_for_another(self) -> bool:
        """Alive, idle and under the memory bound."""
        return self.alive() and self.job_id is None and rss_mb(self.proc.pid) <= settings().trainer_max_rss_mb


_slot: WarmTrainer | None = None  # this pool process's trainer: Celery runs one task at a time per process
_busy = threading.Event()  # this pool process runs a job


@contextlib.contextmanager
def running_job():
    """Mark this slot busy for one job; a SIGTERM meanwhile drains (worker/drain.py) instead of killing it."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    _busy.set()
    try:
        yield
    finally:
        _busy.clear()


def _on_sigterm(signum, frame) -> None:
    if drain.start_here():
        log.info("pool process %s draining (%s)", os.getpid(), "its job runs on" if _busy.is_set() else "idle")
    if not _busy.is_set():
        retire()  # idle: its trainer exits now, not after a job that will never come


def slot_trainer() -> WarmTrainer:
    """This slot's trainer: the warm one if it can take a job, else a fresh one (the old one killed)."""
    global _slot
    if _slot is not None and not (_slot.alive() and _slot.job_id is None):
        retire()
    if _slot is None:
        _slot = WarmTrainer()
    return _slot


def retire() -> None:
    """Kill this slot's trainer; the next `slot_trainer()` starts a fresh one."""
    global _slot
    if _slot is not None:
        _slot.kill()
        _slot = None


def after_job(reusable: bool) -> None:
    """Keep the trainer for the next job, or replace it now so the new one warms up before that job comes."""
    if _slot is not None and not (reusable and _slot.fit_for_another()):
        if reusable:
            log.info("trainer %s uses %.0f MiB (bound %s): replacing it", _slot.proc.pid, rss_mb(_slot.proc.pid),
                     settings().trainer_max_rss_mb)
        retire()
        prestart()


def prestart() -> None:
    """Start the slot's trainer ahead of the first job, so its imports overlap the wait for work."""
    if settings().warm_trainers and not drain.requested():  # a draining worker starts no trainer
        slot_trainer()
