"""A job's files (checkpoints, log, scratch): the one place that removes them when the job is deleted."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from shared.store import artifacts

log = logging.getLogger(__name__)


def delete_job_files(job_id: int, checkpoint_root: Path, store_url: str | None = None) -> list[Path]:
    """Remove the job's artifacts from the store and `checkpoint_root/<job_id>/` here; returns what is left.

    Other machines' scratch copies are theirs to clean. A file that cannot be removed is logged and returned,
    never raised: the job's row is gone already, and an error answer would say the delete failed."""
    try:
        artifacts.delete_job(job_id, store_url)
    except OSError as exc:
        log.warning("job %s deleted, but its artifacts stay in the store: %s", job_id, exc)
    folder = Path(checkpoint_root) / str(job_id)
    try:
        shutil.rmtree(folder)
    except FileNotFoundError:  # never ran here, or removed meanwhile: gone either way
        return []
    except OSError as exc:
        log.warning("job %s deleted, but %s stays: %s", job_id, folder, exc)
        return [folder]
    return []
