"""The supervisor: what a worker does with a job id. Claim it, train it in a trainer process, keep the lease, end it.

A job with one rank goes to this slot's warm trainer (worker/warm.py); a job with several ranks, or any job
when warm trainers are off, gets a fresh process as before (torchrun for several ranks).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Protocol

from shared.lab.settings import settings
from shared.lab.specs import Spec
from shared.store import artifacts, jobs, system
from shared.store.db import DatabaseError, retry, session_scope
from shared.store.models import FINISHED, JobStatus
from shared.train.launch import gpu_shortfall, torchrun_command
from worker import admission, drain, notify, warm
from worker.jobfiles import EXIT_STOPPED, LIMIT_FILE, START_MARK, UPLOAD_SUFFIX, YIELD_FILE, job_dir, local_checkpoint
from worker.limits import Limits
from worker.processes import die_with_parent, kill_group
from worker.system import Sampler

log = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 2.0
# Signals that come from outside the job (the kernel's OOM killer sends SIGKILL): its run is retried. A crash of
# its own (SIGSEGV, SIGABRT, SIGFPE, ...) is the code's, like a Python exception: the job fails.
INFRA_SIGNALS = {signal.SIGKILL, signal.SIGTERM, signal.SIGHUP}


class Attempt(Protocol):
    """A job being trained somewhere: a fresh process or a warm trainer."""

    proc: subprocess.Popen  # leads the attempt's process group

    def wait(self, timeout: float | None) -> int | None: ...  # its exit code once done, else None
    def kill(self) -> None: ...


class FreshProcess:
    """A trainer process started for this one job (torchrun for several ranks)."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc

    def wait(self, timeout: float | None) -> int | None:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        kill_group(self.proc)


def trainer_command(job_id: int, world_size: int, resume: list[str]) -> list[str]:
    """A fresh interpreter (never CUDA in the Celery process); torchrun when the job wants several ranks."""
    args = ["-m", "worker.trainer", str(job_id), *(["--resume", *resume] if resume else [])]
    return [sys.executable, *args] if world_size == 1 else torchrun_command(world_size, *args)


def run_job(job_id: int, worker: str) -> str:
    """Run job `job_id` if this worker admits it (worker/admission.py: admission.Declined if not) and wins the claim;
    returns the job's final status or 'skipped'."""
    if drain.requested():  # delivered while this worker shuts down: leave it to the others
        return "skipped"
    with warm.running_job(), admission.admitted(job_id, worker, packing) as admitted:
        status = _run_claimed(job_id, worker, admitted)
    if status in FINISHED:
        notify.deliver_due()  # at once, not at the next dispatch round: the job (maybe its sweep) just ended
    return status


def _run_claimed(job_id: int, worker: str, admitted: admission.Admission) -> str:
    claimed = retry(lambda s: _claim(s, job_id, worker), what=f"claiming job {job_id}")
    if claimed is None:  # a duplicate delivery, a cancelled job, or another worker holds a live lease
        return "skipped"
    spec, checkpoints, attempt = claimed
    limits = Limits.of(spec)
    epoch, resume = _resume_point(job_id, checkpoints)
    mates = retry(lambda s: _begin(s, job_id, worker, spec, attempt, epoch, admitted.members - 1),
                  what=f"starting job {job_id}")
    admitted.settle(1 + len(mates))
    log.info("job %s started (attempt %s, %s%s)", job_id, attempt, worker,
             f", resuming from {Path(resume[0]).name}" if resume else "")
    if mates:
        return _run_pack(job_id, mates, worker, attempt, limits)
    short = gpu_shortfall(spec.device, spec.world_size, len(visible_gpus()), f"worker {worker}")
    if short:  # torchrun's ranks past the GPUs would only die with 'exit code 1': say why, launch nothing
        retry(lambda s: jobs.finish(s, job_id, worker, JobStatus.FAILED, short), what=f"ending job {job_id}")
        return JobStatus.FAILED.value
    out = _prepare(job_id)
    if spec.world_size == 1 and settings().warm_trainers:
        rc, owned, cancelled = _train_warm(job_id, worker, out, resume, limits, attempt)
    else:
        rc, owned, cancelled = _train_fresh(job_id, worker, out, spec.world_size, resume, limits, attempt)
    if not owned:  # the new owner's log is the job's now
        return "lost"
    _upload_log(job_id, out)
    return _end(job_id, worker, rc, cancelled, out, attempt)


def _end(job_id: int, worker: str, rc: int, cancelled: bool, out: Path, attempt: int) -> str:
    """Record how the job's attempt ended; a trainer killed from outside queues the job again instead."""
    ours = (out / LIMIT_FILE).exists()  # killed for passing its own limits: its fault, never retried
    yielded = (out / YIELD_FILE).exists()  # gave its slot back at a checkpoint: a drain, or a job of higher priority
    if -rc in INFRA_SIGNALS and not cancelled and not ours and (yielded or drain.requested()):
        # This worker is shutting down, or a more urgent job needs its slot: back to the queue, resumed from its
        # newest checkpoint by the next free worker (not counted against max_attempts: nothing went wrong).
        why = (out / YIELD_FILE).read_text() if yielded else "the worker drains"
        log.warning("job %s: %s; queued again (exit code %s)", job_id, why, rc)
        retry(lambda s: jobs.release(s, job_id, worker, refund=True), what=f"releasing job {job_id}")
        return "released"
    if -rc in INFRA_SIGNALS and not cancelled and not ours and attempt < settings().max_attempts:
        # Killed from outside (the OOM killer, an operator): infrastructure, not the job's code. Queue it
        # again; the dispatcher sends it and the next claim resumes from the newest intact checkpoint.
        log.warning("job %s: trainer killed by signal %s on attempt %s; queued again", job_id, -rc, attempt)
        retry(lambda s: jobs.release(s, job_id, worker), what=f"releasing job {job_id}")
        return "requeued"
    status, error = _outcome(rc, cancelled, out)
    if status == JobStatus.SUCCEEDED:  # the machine use it had, summarized into its result
        retry(lambda s: system.summarize(s, job_id), what=f"job {job_id}'s system metrics")
    retry(lambda s: jobs.finish(s, job_id, worker, status, error), what=f"ending job {job_id}")
    log.info("job %s %s (attempt %s, %s)", job_id, status, attempt, worker)
    return status


def _run_pack(job_id: int, mates: list[int], worker: str, attempt: int, limits: Limits) -> str:
    """Train a sweep cell's seeds as one pack in this slot's warm trainer; end each job by its own outcome."""
    members = {j: _prepare(j) for j in (job_id, *mates)}
    log.info("job %s trains with its pack mates %s as one pack", job_id, mates)
    trainer = warm.slot_trainer()
    rc, owned, cancelled, codes = 1, False, set(), {}
    try:
        trainer.hand(job_id, [], pack=mates)
        rc, owned, cancelled = _watch(trainer, members, worker, limits, attempt)
        codes = trainer.codes
    except OSError as exc:
        log.warning("could not hand pack %s to trainer %s: %s", list(members), trainer.proc.pid, exc)
        rc, owned = trainer.wait(0) or 1, True
    finally:
        warm.after_job(reusable=rc == 0 and owned and not cancelled and not any(codes.values()))
    if not owned:
        return "lost"
    for j, out in members.items():
        _upload_log(j, out)
    ends = {j: _end(j, worker, codes.get(j, rc), j in cancelled, out, attempt) for j, out in members.items()}
    return ends[job_id]


def _outcome(rc: int, cancelled: bool, out: Path) -> tuple[JobStatus, str | None]:
    if rc == 0:
        return JobStatus.SUCCEEDED, None
    if (out / LIMIT_FILE).exists() and not cancelled:
        return JobStatus.FAILED, (out / LIMIT_FILE).read_text()
    if cancelled or rc == EXIT_STOPPED:
        return JobStatus.CANCELLED, None
    return JobStatus.FAILED, _error_text(out, rc)


def _claim(s, job_id: int, worker: str) -> tuple[Spec, list[tuple[int, str, str]], int] | None:
    """Take the job; its spec, its checkpoints newest first as (epoch, store key, sha256), and its attempt.

    Safe to retry: a claim whose commit landed before the connection broke is found as ours."""
    job = jobs.claim(s, job_id, worker) or jobs.held_by(s, job_id, worker)
    if job is None:
        return None
    jobs.record_attempt(s, job_id, job.attempts, worker, 0)  # logged with the claim: also if this worker dies next
    checkpoints = [(c.epoch, c.key, c.sha256) for c in jobs.checkpoints_newest_first(s, job_id)]
    return Spec.stored(job.spec), checkpoints, job.attempts


def _begin(s, job_id: int, worker: str, spec: Spec, attempt: int, epoch: int, most: int) -> list[int]:
    """Record where the attempt starts; drop what a lost attempt wrote past that; claim up to `most` pack mates
    to train with it as one pack (see `packing`; a resumed job runs alone). Safe to retry."""
    # A retry resumes from the last intact checkpoint of the lost attempt, so finished epochs are not redone.
    jobs.discard_after(s, job_id, epoch)
    jobs.record_attempt(s, job_id, attempt, worker, epoch)
    job = jobs.held_by(s, job_id, worker)
    if job is None or epoch or not packing(spec) or most < 1:
        return []
    mates = jobs.claim_pack_mates(s, job, worker, min(most, settings().pack_max - 1))
    for mate in mates:
        jobs.record_attempt(s, mate.id, mate.attempts, worker, 0)
    return [m.id for m in mates]


def visible_gpus() -> list[str]:
    """The GPU ids this worker owns (python -m worker sets CUDA_VISIBLE_DEVICES: ids, or "" for CPUs)."""
    return [g for g in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if g.strip()]


def packing(spec: Spec) -> bool:
    """Whether this worker trains a sweep cell's seeds as one pack: a warm trainer, one rank, and
    CNNLAB_PACK_SEEDS (`gpu`: on GPU workers, where stacked seeds pay; `always`; `never`)."""
    mode = settings().pack_seeds
    on_gpu = bool(os.environ.get("CUDA_VISIBLE_DEVICES"))  # python -m worker sets it: GPU ids, or "" for CPUs
    return settings().warm_trainers and spec.world_size == 1 and (mode == "always" or (mode == "gpu" and on_gpu))


def _resume_point(job_id: int, checkpoints: list[tuple[int, str, str]]) -> tuple[int, list[str]]:
    """The newest checkpoint intact here or in the artifact store (fetched into this machine's scratch directory):
    (its epoch, [local path, sha256]); (0, []) to start over. A missing or corrupt one is skipped, not fatal."""
    for epoch, key, sha in checkpoints:
        local = local_checkpoint(job_id, key, sha)
        if local is not None:
            return epoch, [str(local), sha]
    return 0, []


def _upload_log(job_id: int, out: Path) -> None:
    """Put the job's log (every attempt so far) in the artifact store for the API and the next machine."""
    try:
        artifacts.upload_log(job_id, out / "log.txt")
    except OSError as exc:  # the log is for people: failing to upload it must not fail the job
        log.warning("job %s: log upload failed: %s", job_id, exc)


def _prepare(job_id: int) -> Path:
    """The job's directory without a previous attempt's stop, error and pid files; the attempt's mark in its log."""
    out = job_dir(job_id)
    out.mkdir(parents=True, exist_ok=True)
    if not (out / "log.txt").exists():  # new to this machine: continue the log the earlier attempts uploaded
        try:
            artifacts.fetch_log(job_id, out / "log.txt")
        except OSError as exc:
            log.warning("job %s: the earlier attempts' log could not be fetched: %s", job_id, exc)
    stale_files = [*out.glob("error-rank*.txt"), *out.glob("rank*.pid"), *out.glob(f".*{UPLOAD_SUFFIX}")]
    for stale in [out / "stop", out / LIMIT_FILE, out / YIELD_FILE, *stale_files]:
        stale.unlink(missing_ok=True)
    with open(out / "log.txt", "ab") as logfile:
        logfile.write(f"{START_MARK}\n".encode())
    return out


def _train_fresh(job_id: int, worker: str, out: Path, world_size: int, resume: list[str],
                 limits: Limits, attempt: int) -> tuple[int, bool, bool]:
    with open(out / "log.txt", "ab") as logfile:
        proc = subprocess.Popen(trainer_command(job_id, world_size, resume), stdout=logfile,
                                stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent())
        try:
            rc, owned, cancelled = _watch(FreshProcess(proc), {job_id: out}, worker, limits, attempt)
            return rc, owned, bool(cancelled)
        finally:
            kill_group(proc)  # sweep any rank or loader process left behind, also if watching failed


def _train_warm(job_id: int, worker: str, out: Path, resume: list[str], limits: Limits,
                attempt: int) -> tuple[int, bool, bool]:
    """Hand the job to this slot's warm trainer; keep that trainer only if the job ended cleanly."""
    trainer = warm.slot_trainer()
    rc, owned, cancelled = 1, False, False
    try:
        trainer.hand(job_id, resume)
        rc, owned, stopped = _watch(trainer, {job_id: out}, worker, limits, attempt)
        cancelled = bool(stopped)
    except OSError as exc:  # the trainer died before the job reached it (it was checked alive just before)
        log.warning("could not hand job %s to trainer %s: %s", job_id, trainer.proc.pid, exc)
        rc, owned = trainer.wait(0) or 1, True
    finally:  # also when watching failed (a database outage): a trainer in an unknown state is not reused
        warm.after_job(reusable=rc == 0 and owned and not cancelled)
    return rc, owned, cancelled


def _watch(attempt: Attempt, members: dict[int, Path], worker: str, limits: Limits,
           number: int) -> tuple[int, bool, set[int]]:
    """Heartbeat while the jobs train (one, or a pack, the first leading) and sample their machine use; pass on each
    job's cancel; end a run past its limits, or one that yields (a draining worker's, a preempted one's).

    Returns (exit code, the first job still owned, the jobs whose cancel was seen)."""
    first, cancel_at, renewed = next(iter(members)), {}, time.monotonic()
    beat = renewed  # when the last heartbeat began
    yielding, sampler = drain.Yielding(first), Sampler(attempt.proc.pid, number)
    every = min(HEARTBEAT_SECONDS, settings().system_sample_seconds)  # a sample interval under 2 s is honoured
    while True:
        rc = attempt.wait(every)
        if rc is not None:
            return rc, True, set(cancel_at)
        sample = sampler.due_sample()
        if sample is None and time.monotonic() - beat < HEARTBEAT_SECONDS - every / 2:
            continue  # a short sample interval wakes this loop more often; the database still hears every ~2 s
        beat = time.monotonic()
        try:
            with session_scope() as s:
                beats = {j: jobs.heartbeat(s, j, worker) for j in members}
                for j in members if sample else ():
                    system.record(s, j, sample)
            renewed = time.monotonic()
        except DatabaseError as exc:  # a database blip: keep training, unless the lease runs out meanwhile
            log.warning("heartbeat of job %s failed: %s", first, exc)
            beats = {j: (time.monotonic() - renewed < jobs.lease_seconds(), False) for j in members}
        if not beats[first][0]:  # our lease was taken over (or lapsed): stop at once, the new owner runs the job
            attempt.kill()
            return attempt.wait(None) or 1, False, set()
        if _yields(yielding, members) or _over_limit(attempt, members, limits):
            attempt.kill()
            return attempt.wait(None) or 1, True, set(cancel_at)
        for j, (_, cancel) in beats.items():
            if cancel and j not in cancel_at:
                cancel_at[j] = time.monotonic()
                (members[j] / "stop").touch()  # every rank (or pack member) polls its file at step boundaries
        if len(cancel_at) == len(members) and time.monotonic() - max(cancel_at.values()) > settings().stop_grace_seconds:
            attempt.kill()  # a hung run: the next wait() sees it gone


def _yields(yielding: drain.Yielding, members: dict[int, Path]) -> bool:
    """Whether the run gives its slot back now; if so why goes to each member's yield file (see `_end`)."""
    if not yielding.enough():
        return False
    for out in members.values():
        (out / YIELD_FILE).write_text(yielding.why)
    return True


def _over_limit(attempt: Attempt, members: dict[int, Path], limits: Limits) -> bool:
    """Whether the run is past its wall time or memory; if so the reason goes to each member's limit file."""
    why = limits.breach(attempt.proc.pid)  # the trainer leads its own process group (start_new_session)
    if why is not None:
        log.warning("job %s: %s", next(iter(members)), why)
        for out in members.values():
            (out / LIMIT_FILE).write_text(why)
    return why is not None


def _error_text(out: Path, rc: int) -> str:
    """The ranks' one-line errors, with torchrun's note of a rank that died without one; else the log's tail."""
    lines = [f.read_text().strip()[:2000] for f in sorted(out.glob("error-rank*.txt"))]
    log = (out / "log.txt").read_text(errors="replace").splitlines() if (out / "log.txt").exists() else []
    attempt = log[len(log) - log[::-1].index(START_MARK):] if START_MARK in log else log
    lines += [ln.strip() for ln in attempt if "exitcode" in ln][-4:]  # torchrun's note of each failed rank
    if not lines:
        lines = [ln for ln in attempt if ln.strip()][-20:]
    return f"training process exited with code {rc}" + (":\n" + "\n".join(lines) if lines else "")
