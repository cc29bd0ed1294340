"""A job's files on disk (checkpoints, log, scratch): the one place that removes them.

Deleting a job calls `delete_job_files`; when job files move to an artifact store, this function is what changes.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

log = logging.getLogger(__name__)


def delete_job_files(job_id: int, checkpoint_root: Path, recorded: list[str]) -> list[Path]:
    """Remove `checkpoint_root/<job_id>/` and the job's recorded checkpoint files; returns what was removed.

    Recorded paths outside that directory (a worker with another CNNLAB_CHECKPOINT_DIR) go one by one, with their
    .sha256 sidecars; what is already gone is skipped, so a retried delete succeeds."""
    removed: list[Path] = []
    folder = Path(checkpoint_root) / str(job_id)
    if folder.is_dir() and not folder.is_symlink():
        shutil.rmtree(folder)
        removed.append(folder)
    for name in recorded:
        for path in (Path(name), Path(name + ".sha256")):
            if path.is_file() or path.is_symlink():
                path.unlink()
                removed.append(path)
    if removed:
        log.info("job %s: removed %s", job_id, ", ".join(map(str, removed)))
    return removed
