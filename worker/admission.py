"""Measured admission (`python -m worker --per-gpu auto`, CNNLAB_ADMIT=measured): before a slot claims a job it
measures its device and starts the job only if there is room for it.

The rule (`decide`) for a job that needs S GB shared (its dataset, once per pack) and M GB per member (weights,
gradients, optimizer state, activations: shared.train.memory.job_need, asked of the slot's warm trainer, whose own
base is resident already):

- alone on this worker it is admitted: the submit checks bounded it by the queue's memory, and holding it back
  would only strand it;
- beside other jobs it waits while the device is busy: a job admitted here less than CNNLAB_AUTO_SETTLE_SECONDS
  ago (its load is not in the measurement yet), or a measured utilization at or above CNNLAB_AUTO_BUSY_PERCENT
  (NVML's GPU utilization; all cores' CPU % on a CPU worker);
- and while S + M + CNNLAB_AUTO_MARGIN_GB is more than the room: the smaller of the measured free memory (NVML's
  free on the GPU, psutil's available on the CPU) and CNNLAB_AUTO_MEMORY_GB, less the estimates of the jobs
  admitted here and still running. A running job that has allocated already counts twice against the measured
  figure: conservative on purpose, since one that has not allocated yet is in no measurement at all;
- a pack takes as many members as the room holds (at least one), at most CNNLAB_PACK_MAX.

A job not admitted is measured again every POLL_SECONDS for CNNLAB_AUTO_WAIT_SECONDS, then given back to its queue
unclaimed (worker/tasks.py: Celery's Reject with requeue puts the message back at once; nothing was claimed, so
nothing is undone and the database claim still runs it exactly once). Why it waits goes to the worker's log and,
through Redis, to the job's `waiting` (shared.store.fleet.held).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import math
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

from shared.lab.settings import Settings, settings
from shared.lab.specs import Spec
from shared.store import fleet, jobs
from shared.store.db import retry
from shared.store.models import JobStatus
from worker import drain, warm
from worker.system import Measured, measure

log = logging.getLogger(__name__)
POLL_SECONDS = 0.5  # how often a held-back job is measured again


class Declined(Exception):
    """The job was not admitted in time: it goes back to its queue unclaimed."""


@dataclass(frozen=True)
class Need:
    """A job's memory on a warm trainer (GiB)."""

    shared_gb: float  # its dataset: once per pack
    member_gb: float  # each member's weights, gradients, optimizer state and activations

    def total(self, members: int) -> float:
        return self.shared_gb + members * self.member_gb


@dataclass(frozen=True)
class Running:
    """A job admitted on this worker and still running."""

    job_id: int
    gb: float | None  # its estimate as held (None: unknown, it runs alone)
    age_seconds: float  # since it was admitted


@dataclass(frozen=True)
class Rules:
    budget_gb: float | None  # CNNLAB_AUTO_MEMORY_GB
    margin_gb: float
    busy_percent: float  # 100: never busy
    settle_seconds: float

    @classmethod
    def of(cls, env: Settings) -> Rules:
        return cls(env.auto_memory_gb, env.auto_margin_gb, env.auto_busy_percent, env.auto_settle_seconds)


@dataclass(frozen=True)
class Decision:
    members: int  # how many jobs it may train as one pack; 0: it waits
    why: str


def decide(need: Need | None, most: int, measured: Measured, running: list[Running], rules: Rules) -> Decision:
    """Whether a job (up to `most` pack members) starts now beside the jobs `running` here (see the module's doc)."""
    held = sum(r.gb or 0.0 for r in running)
    room = min(measured.free_gb, rules.budget_gb or math.inf) - held - rules.margin_gb
    if not running:
        return Decision(max(1, _fits(need, most, room)), "alone on this worker")
    if need is None:
        return Decision(0, "its memory cannot be estimated here (several ranks, or no warm trainer): it runs alone")
    if any(r.gb is None for r in running):
        return Decision(0, "a job of unknown memory runs here: nothing starts beside it")
    busy = _busy(measured, running, rules)
    if busy:
        return Decision(0, busy)
    members = _fits(need, most, room)
    budget = f", CNNLAB_AUTO_MEMORY_GB {rules.budget_gb:g}" if rules.budget_gb else ""
    words = (f"{need.total(max(1, members)):.3f} GB for {max(1, members)} member(s) + {rules.margin_gb:g} GB margin; "
             f"{room + rules.margin_gb:.3f} GB room ({measured.device} {measured.free_gb:.3f} GB measured free{budget}, "
             f"{held:.3f} GB held by {len(running)} job(s) running here)")
    return Decision(members, words if members else f"needs {words}")


def _fits(need: Need | None, most: int, room: float) -> int:
    """How many members (at most `most`) fit in `room` GB; 0 if not one."""
    if need is None:
        return 1
    if need.member_gb <= 0:
        return most if need.shared_gb <= room else 0
    return max(0, min(most, math.floor((room - need.shared_gb) / need.member_gb)))


def _busy(measured: Measured, running: list[Running], rules: Rules) -> str | None:
    """Why the device counts as busy now, or None."""
    if rules.busy_percent >= 100:
        return None
    young = min(running, key=lambda r: r.age_seconds)
    if young.age_seconds < rules.settle_seconds:
        return f"job {young.job_id} started here {young.age_seconds:.1f} s ago and is not in the measurement yet"
    if measured.busy_percent is not None and measured.busy_percent >= rules.busy_percent:
        return (f"the {measured.device} is {measured.busy_percent:.0f}% busy "
                f"(CNNLAB_AUTO_BUSY_PERCENT {rules.busy_percent:g})")
    return None


class Ledger:
    """The jobs this worker's slots admitted, shared by its pool processes: a JSON file under an exclusive flock,
    slot pid -> {job, gb, at, born}; an entry whose process is gone (or whose pid was reused) is dropped."""

    def __init__(self, worker: str):
        self.node = worker.rsplit(":", 1)[0]  # the Celery node: every slot of this worker shares its ledger
        safe = re.sub(r"[^\w@.-]", "_", self.node)
        self.path = Path(settings().checkpoint_dir) / f"admitted-{safe}.json"
        self.me = str(os.getpid())

    @contextlib.contextmanager
    def entries(self) -> Iterator[dict[str, dict]]:
        """The live entries, locked; what the caller leaves in the dict is written back."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644), "r+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            found = {pid: e for pid, e in _read(f.read()).items() if _same(pid, e)}
            yield found
            f.seek(0)
            f.truncate()
            f.write(json.dumps(found))

    def resize(self, gb: float | None) -> None:
        with self.entries() as found:
            if self.me in found:
                found[self.me]["gb"] = gb

    def drop(self) -> None:
        with self.entries() as found:
            found.pop(self.me, None)


def _read(text: str) -> dict[str, dict]:
    """The ledger's entries; none from a file a partial write left unreadable (it is written whole again)."""
    try:
        entries = json.loads(text) if text.strip() else {}
    except ValueError:
        log.warning("admission ledger unreadable: starting it afresh")
        return {}
    return entries if isinstance(entries, dict) else {}


def _same(pid: str, entry: dict) -> bool:
    """Whether the slot process that wrote `entry` still lives (the same process, not a reused pid)."""
    try:
        return abs(psutil.Process(int(pid)).create_time() - entry.get("born", 0)) < 1.0
    except (psutil.Error, ValueError):
        return False


@dataclass
class Admission:
    """A job let in: how many pack members it may take, and the memory it holds on this worker's ledger."""

    members: int
    need: Need | None = None
    ledger: Ledger | None = None

    def settle(self, count: int) -> None:
        """The pack it claimed has `count` members: hold only their memory."""
        if self.ledger is not None and self.need is not None and count < self.members:
            self.members = count
            self.ledger.resize(self.need.total(count))


@contextlib.contextmanager
def admitted(job_id: int, worker: str, packs: Callable[[Spec], bool]) -> Iterator[Admission]:
    """Let the job in (measured, when CNNLAB_ADMIT is `measured`) and hold its memory until it ends; Declined if it
    was not let in within CNNLAB_AUTO_WAIT_SECONDS. `packs(spec)`: whether it may take pack mates."""
    env = settings()
    spec = _spec_to_admit(job_id) if env.admit == "measured" else None
    if spec is None:  # admission off, or a job that will not run (the claim says why)
        yield Admission(env.pack_max)
        return
    ledger, need, most = Ledger(worker), _need(spec, env), env.pack_max if packs(spec) else 1
    decision = _wait_for_room(job_id, need, most, ledger, env)
    try:
        yield Admission(decision.members, need, ledger)
    finally:
        ledger.drop()


def _spec_to_admit(job_id: int) -> Spec | None:
    """The job's spec if it may still run (queued, or running and maybe orphaned); None otherwise. Waits out a
    database outage, as the claim does."""
    def read(s) -> Spec | None:
        try:
            job = jobs.get_job(s, job_id)
        except jobs.NotFound:
            return None
        if job.cancel_requested or job.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
            return None
        if job.status == JobStatus.RUNNING and not jobs.lease_lapsed(job):  # a pack mate, a duplicate delivery:
            return None  # the claim skips it at once (holding it back would requeue it for as long as it runs)
        return Spec.stored(job.spec)

    return retry(read, what=f"reading job {job_id} to admit it")


def _need(spec: Spec, env: Settings) -> Need | None:
    """The job's memory as this slot's warm trainer estimates it; None when it cannot say (DDP, no warm trainer)."""
    if spec.world_size != 1 or not env.warm_trainers:
        return None
    try:
        sized = warm.slot_trainer().size(spec.model_dump(mode="json"))
    except OSError as exc:  # the trainer could not start: the job's own attempt will say why
        log.warning("cannot size a job on this slot's trainer: %s", exc)
        return None
    if sized is None or sized.shared_bytes is None or sized.member_bytes is None:
        return None
    return Need(sized.shared_bytes / 2**30, sized.member_bytes / 2**30)


def _wait_for_room(job_id: int, need: Need | None, most: int, ledger: Ledger, env: Settings) -> Decision:
    """Measure until the job is admitted (its memory then held on the ledger); Declined past the wait."""
    deadline, said = time.monotonic() + env.auto_wait_seconds, None
    while True:
        measured = _measure()  # outside the lock: the ledger read under it holds what this measurement misses
        with ledger.entries() as found:
            now = time.time()
            running = [Running(e["job"], e["gb"], now - e["at"]) for pid, e in found.items() if pid != ledger.me]
            decision = decide(need, most, measured, running, Rules.of(env))
            if decision.members:
                found[ledger.me] = {"job": job_id, "gb": None if need is None else need.total(decision.members),
                                    "at": now, "born": psutil.Process().create_time()}
        if decision.members:
            log.info("job %s admitted (%s)", job_id, decision.why)
            _note(fleet.unhold, env.broker_url, job_id)  # another slot may have held it back before
            return decision
        if _rule(decision.why) != _rule(said or ""):  # the same rule with new numbers is said once
            log.info("job %s waits: %s", job_id, decision.why)
            why = f"worker {ledger.node} holds it back: {decision.why}"
            _note(fleet.hold, env.broker_url, job_id, why, 3 * env.dispatch_seconds + 5)  # expires like a heartbeat
        said = decision.why
        if drain.requested() or time.monotonic() >= deadline:
            log.info("job %s goes back to its queue (not admitted in %g s)", job_id, env.auto_wait_seconds)
            raise Declined(said)
        time.sleep(POLL_SECONDS)


def _rule(why: str) -> str:
    """A reason without its numbers (GB, %, seconds, job ids change every measurement)."""
    return re.sub(r"\d+(\.\d+)?", "#", why)


def _measure() -> Measured:
    """The device measured; a device that cannot be read counts as having no room (the job runs alone)."""
    try:
        return measure()
    except Exception as exc:  # noqa: BLE001 - NVML or psutil failing must not drop the job before its claim
        log.warning("cannot measure the device: %s", exc)
        return Measured(device="device", free_gb=0.0, busy_percent=None)


def _note(write: Callable[..., None], *args) -> None:
    """Tell the API why a job waits, or that it no longer does (Redis); a broker that is down only loses the note."""
    try:
        write(*args)
    except Exception as exc:  # noqa: BLE001 - the note is for people: it never stops admission
        log.warning("could not note why a job waits: %s", exc)
