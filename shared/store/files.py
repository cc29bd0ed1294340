"""A job's files on disk (checkpoints, log, scratch): the one place that removes them.

Deleting a job calls `delete_job_files`; when job files move to an artifact store, this function is what changes.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

log = logging.getLogger(__name__)


def delete_job_files(job_id: int, checkpoint_root: Path, recorded: list[str]) -> list[Path]:
    """Remove `checkpoint_root/<job_id>/` and the job's recorded checkpoint files; returns what is left.

    Recorded paths outside that directory (a worker with another CNNLAB_CHECKPOINT_DIR) go one by one, with their
    .sha256 sidecars; what is already gone is skipped. A file that cannot be removed is logged and returned, never
    raised: the job's row is gone already, and an error answer would say the delete failed."""
    folder = Path(checkpoint_root) / str(job_id)
    paths = [folder] + [p for name in recorded for p in (Path(name), Path(name + ".sha256"))]
    left = []
    for path in paths:
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()
        except FileNotFoundError:  # removed meanwhile (the worker's own cleanup): gone either way
            continue
        except OSError as exc:
            log.warning("job %s deleted, but %s stays: %s", job_id, path, exc)
            left.append(path)
    return left
