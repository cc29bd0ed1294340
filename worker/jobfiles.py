"""A job's scratch directory on this worker, and the files by which supervisor and trainer talk.

    <CNNLAB_CHECKPOINT_DIR>/<job id>/
        log.txt             the trainer's output, attempts separated by START_MARK; uploaded to the artifact
                            store after each attempt (a machine taking the job over starts from that copy)
        epoch-NNN.pt        checkpoints (+ .sha256 sidecars), each uploaded to the artifact store
        stop                present: the job was cancelled, ranks stop at the next step boundary
        limit.txt           the run passed its wall-time or memory limit (worker/limits.py): why, the job's error
        yielded.txt         the run gave its slot back at a checkpoint (a drain, or a job of higher priority): why
        error-rank<R>.txt   a rank's one-line error
        rank<R>.pid         each rank's process id

Only this machine reads these paths; what others read goes through the store (shared/store/artifacts/__init__.py).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from shared.store import artifacts
from shared.store.logs import job_dir

__all__ = ["EXIT_STOPPED", "LIMIT_FILE", "START_MARK", "UPLOAD_SUFFIX", "YIELD_FILE", "job_dir", "local_checkpoint"]
EXIT_STOPPED = 3  # the trainer's exit code when it stopped at a step boundary because the job was cancelled
LIMIT_FILE = "limit.txt"
YIELD_FILE = "yielded.txt"
UPLOAD_SUFFIX = ".upload"  # a checkpoint's second name while the trainer uploads it (`.epoch-003.pt.upload`)
START_MARK = "==== cnnlab: training process started ===="
log = logging.getLogger(__name__)


def local_checkpoint(job_id: int, key: str, sha256: str) -> Path | None:
    """The checkpoint as an intact file in this machine's scratch directory: the copy already here if it hashes
    right, else one downloaded from the store and verified; None if neither is intact (it is skipped)."""
    local = job_dir(job_id) / key.rsplit("/", 1)[-1]  # the store keeps the file's name: jobs/<id>/epoch-NNN.pt
    if local.is_file():
        with open(local, "rb") as f:
            if hashlib.file_digest(f, "sha256").hexdigest() == sha256:
                return local
        log.warning("checkpoint %s is corrupt (sha256 differs): fetching the store's copy", local)
    try:
        return artifacts.download_verified(key, sha256, local)
    except artifacts.MissingArtifact:
        log.warning("checkpoint %s of job %s is not in the store %s", key, job_id, artifacts.store().url)
    except artifacts.CorruptArtifact as exc:
        log.warning("checkpoint %s is corrupt in the store (%s): resuming from an earlier one", key, exc)
    except OSError as exc:  # the store unreachable: an earlier checkpoint (or a fresh start) still makes progress
        log.warning("checkpoint %s could not be fetched: %s", key, exc)
    return None
