"""The training child process: `python -m shared.runner JOB_ID` (or under torchrun, one per rank).

It trains the job's stored spec and, on rank 0 only, streams progress, metrics, checkpoints and the
result into the database. The job's status is left to the parent (shared.execution), which owns the lease.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
import traceback
from pathlib import Path

from sqlalchemy import update

from shared import config
from shared.db import EPOCH_FIELDS, Base, Checkpoint, EpochMetric, Job, Result, StepLoss, session_scope
from shared.engine import Reporter, Stopped, fit
from shared.specs import Spec

EXIT_STOPPED = 3  # the run stopped at a step boundary because the job was cancelled


def job_dir(job_id: int) -> Path:
    return config.checkpoint_dir() / str(job_id)


class DbReporter(Reporter):
    """Writes what the engine reports from a background thread, so the training loop never waits on the database.

    Writes keep their order; progress goes out at most once a second. `close()` flushes and re-raises a failed write.
    """

    def __init__(self, job_id: int, min_interval: float = 1.0):
        self.job_id = job_id
        self.min_interval = min_interval
        self.last = 0.0
        self.epochs = 1
        self.error: Exception | None = None
        self.pending: queue.SimpleQueue = queue.SimpleQueue()
        self.writer = threading.Thread(target=self._write, name="db-reporter", daemon=True)
        self.writer.start()

    def _write(self) -> None:
        while (rows := self.pending.get()) is not None:
            if self.error is None:
                try:
                    with session_scope() as s:
                        for row in rows:
                            if isinstance(row, Base):
                                s.add(row)
                            else:  # an UPDATE statement
                                s.execute(row)
                except Exception as exc:  # noqa: BLE001 - surfaced by close()
                    self.error = exc

    def close(self) -> None:
        self.pending.put(None)
        self.writer.join()
        if self.error is not None:
            raise self.error

    def _progress(self, **progress) -> None:
        self.pending.put([update(Job).where(Job.id == self.job_id).values(progress=progress)])

    def on_start(self, info):
        self.epochs = info["spec"]["epochs"]
        done = info["start_epoch"]
        self._progress(phase="training", epoch=done, epochs=self.epochs, step=0, steps=info["steps_per_epoch"],
                       fraction=done / self.epochs)

    def on_step(self, epoch, step, steps, loss):
        global_step = (epoch - 1) * steps + step
        if loss is not None:
            self.pending.put([StepLoss(job_id=self.job_id, epoch=epoch, step=step, global_step=global_step, loss=loss)])
        now = time.monotonic()
        if now - self.last >= self.min_interval or step == steps:
            self.last = now
            self._progress(phase="training" if step < steps else "evaluating", epoch=epoch, epochs=self.epochs,
                           step=step, steps=steps, fraction=global_step / (self.epochs * steps))

    def on_epoch(self, m):
        self.pending.put([EpochMetric(job_id=self.job_id, **{k: m[k] for k in EPOCH_FIELDS})])

    def on_checkpoint(self, epoch, path, sha256):
        self.pending.put([Checkpoint(job_id=self.job_id, epoch=epoch, path=str(path), sha256=sha256,
                                     size_bytes=Path(path).stat().st_size)])


def save_result(job_id: int, result: dict) -> None:
    details = {k: result[k] for k in ("confusion", "misclassified", "history")}
    try:  # the pages' images are extras: failing to draw them must never fail the job
        from shared.analysis import job_artifacts

        details["artifacts"] = job_artifacts(job_id, result)
    except Exception as exc:  # noqa: BLE001
        details["artifacts_error"] = f"{type(exc).__name__}: {exc}"
    with session_scope() as s:
        s.merge(Result(job_id=job_id, test_accuracy=result["test_accuracy"], test_loss=result["test_loss"],
                       params=result["params"], epochs=result["epochs"], train_seconds=result["train_seconds"],
                       samples_per_second=result["samples_per_second"], data=result["data"],
                       environment=result["environment"], details=details))
        s.execute(update(Job).where(Job.id == job_id).values(progress={
            "phase": "done", "epoch": result["epochs"], "epochs": result["epochs"], "fraction": 1.0}))


def run(job_id: int) -> int:
    """Train job `job_id`; returns the process exit code (0 done, EXIT_STOPPED cancelled, 1 failed)."""
    rank = int(os.environ.get("RANK", "0"))
    out = job_dir(job_id)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"rank{rank}.pid").write_text(str(os.getpid()))  # lets operators (and tests) find each rank
    try:
        with session_scope() as s:
            spec = Spec.model_validate(s.get(Job, job_id).spec)
        resume = os.environ.get("CNNLAB_RESUME")
        reporter = DbReporter(job_id) if rank == 0 else None
        stop_file = out / "stop"
        try:
            result = fit(spec, data_root=config.data_dir(), out_dir=out, resume=Path(resume) if resume else None,
                         resume_sha256=os.environ.get("CNNLAB_RESUME_SHA256"), reporter=reporter,
                         should_stop=stop_file.exists)
        finally:  # what was reported is stored, also when the run stops or fails
            if reporter is not None:
                reporter.close()
        if rank == 0:
            save_result(job_id, result)
        return 0
    except Stopped:
        return EXIT_STOPPED
    except Exception as exc:  # noqa: BLE001 - every failure becomes the job's error text
        traceback.print_exc()  # the full story goes to the job's log
        who = f"rank {rank}: " if int(os.environ.get("WORLD_SIZE", "1")) > 1 else ""
        (out / f"error-rank{rank}.txt").write_text(f"{who}{type(exc).__name__}: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(run(int(sys.argv[1])))
