"""A job's scratch directory on this worker, and the files by which supervisor and trainer talk.

    <CNNLAB_CHECKPOINT_DIR>/<job id>/
        log.txt             the trainer's output, attempts separated by START_MARK
        epoch-NNN.pt        checkpoints (+ .sha256 sidecars)
        stop                present: the job was cancelled, ranks stop at the next step boundary
        limit.txt           the run passed its wall-time or memory limit (worker/limits.py): why, the job's error
        error-rank<R>.txt   a rank's one-line error
        rank<R>.pid         each rank's process id
"""

from __future__ import annotations

from pathlib import Path

from shared.settings import settings

EXIT_STOPPED = 3  # the trainer's exit code when it stopped at a step boundary because the job was cancelled
LIMIT_FILE = "limit.txt"
START_MARK = "==== cnnlab: training process started ===="


def job_dir(job_id: int) -> Path:
    return settings().checkpoint_dir / str(job_id)
