"""A job's scratch directory on this worker, and the files by which supervisor and trainer talk.

    <CNNLAB_CHECKPOINT_DIR>/<job id>/
        log.txt             the trainer's output, attempts separated by START_MARK (read by shared/store/logs.py)
        epoch-NNN.pt        checkpoints (+ .sha256 sidecars)
        stop                present: the job was cancelled, ranks stop at the next step boundary
        error-rank<R>.txt   a rank's one-line error
        rank<R>.pid         each rank's process id
"""

from __future__ import annotations

from shared.store.logs import job_dir

__all__ = ["EXIT_STOPPED", "START_MARK", "job_dir"]
EXIT_STOPPED = 3  # the trainer's exit code when it stopped at a step boundary because the job was cancelled
START_MARK = "==== cnnlab: training process started ===="
