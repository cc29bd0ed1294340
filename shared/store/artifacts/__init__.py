"""The artifact store: where a job's checkpoints and log live so that any machine can read them.

One setting, CNNLAB_ARTIFACT_STORE, a URL:

    file:///path          a directory (default VAR_DIR/artifacts; an NFS mount on a fleet)
    s3://bucket/prefix    object storage (S3, MinIO) through s3fs; endpoint and keys from the AWS_* variables
    db://                 chunked rows in the service's own database (shared/store/artifacts/db.py), for small models

Keys are relative (`jobs/<id>/epoch-001.pt`, `jobs/<id>/log.txt`); the database records keys and sha256s, never
a machine's local path. Uploads are atomic (a temporary key renamed into place, one PUT on S3, one transaction in
the database), so a reader sees the whole artifact or none; readers check the recorded sha256.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from shared.lab.settings import settings
from shared.store.artifacts.base import CHUNK, CorruptArtifact, MissingArtifact, Store
from shared.store.artifacts.fs import FsspecStore

__all__ = ["CorruptArtifact", "MissingArtifact", "Store", "store"]
log = logging.getLogger(__name__)


_STORES: dict[str, Store] = {}


def default_url() -> str:
    """CNNLAB_ARTIFACT_STORE, else file://VAR_DIR/artifacts."""
    env = settings()
    return env.artifact_store or (env.var_dir / "artifacts").as_uri()


def store(url: str | None = None) -> Store:
    """The store at `url` (default: the setting); one instance per URL per process, made afresh after a fork."""
    url = url or default_url()
    cached = _STORES.get(url)
    if cached is not None and getattr(cached, "pid", None) == os.getpid():
        return cached
    if url.startswith("db:"):
        from shared.store.artifacts.db import DbStore  # SQLAlchemy models: only for db://

        made: Store = DbStore(url)
    else:
        made = FsspecStore(url)
    made.pid = os.getpid()  # type: ignore[attr-defined]
    _STORES[url] = made
    return made


# ---- keys -------------------------------------------------------------------------------------------------------

def job_prefix(job_id: int) -> str:
    return f"jobs/{job_id}/"


def artifact_key(job_id: int, name: str) -> str:
    """The key of one of a job's artifacts: `epoch-001.pt`, `log.txt`."""
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"bad artifact name {name!r}")
    return job_prefix(job_id) + name


LOG = "log.txt"


# ---- what workers, the API and other services call (`url`: another store than CNNLAB_ARTIFACT_STORE, e.g. the
# API's configured ARTIFACT_STORE) ---------------------------------------------------------------------------------

def upload(local: Path, key: str, tries: int = 5) -> None:
    """Put a local file under `key`, retrying a store that is briefly unreachable (1 s doubling, `tries` times)."""
    pause = 1.0
    for attempt in range(1, tries + 1):
        try:
            store().put_file(Path(local), key)
            return
        except (OSError, ConnectionError) as exc:
            if attempt == tries:
                raise
            log.warning("upload of %s to %s failed (%s); trying again in %.0f s", key, store().url, exc, pause)
            time.sleep(pause)
            pause *= 2


def open_artifact(job_id: int, name: str, url: str | None = None) -> BinaryIO:
    """One of a job's artifacts (`log.txt`, `epoch-001.pt`) for reading, from wherever it was written.

    Raises MissingArtifact. Unverified: checkpoints go through `stream_verified` or `download_verified`."""
    return store(url).open(artifact_key(job_id, name))


def read_log(job_id: int, url: str | None = None) -> str | None:
    """The job's log as last uploaded (with each checkpoint and at the end of each attempt), or None if none was."""
    try:
        with open_artifact(job_id, LOG, url) as f:
            return f.read().decode(errors="replace")
    except MissingArtifact:
        return None


def upload_log(job_id: int, local: Path) -> None:
    """Upload the job's local log (its attempts on this machine and those fetched before them), as a snapshot:
    a trainer may still be appending to it, and an upload must not see the file grow under it."""
    local = Path(local)
    if not local.is_file():
        return
    fd, snapshot = tempfile.mkstemp(dir=local.parent, prefix=".log-", suffix=".tmp")
    try:
        with open(local, "rb") as src, os.fdopen(fd, "wb") as dst:
            shutil.copyfileobj(src, dst, CHUNK)
        upload(Path(snapshot), artifact_key(job_id, LOG))
    finally:
        Path(snapshot).unlink(missing_ok=True)


def fetch_log(job_id: int, local: Path) -> bool:
    """Start a local log from the store's copy (earlier attempts on other machines); False if there is none."""
    try:
        with open_artifact(job_id, LOG) as src, open(local, "wb") as dst:
            shutil.copyfileobj(src, dst, CHUNK)
        return True
    except MissingArtifact:
        return False


def sha256_of(key: str, url: str | None = None) -> str:
    """The sha256 of what the store holds under `key` (streamed: nothing is kept); raises MissingArtifact."""
    h = hashlib.sha256()
    with store(url).open(key) as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def check(key: str, sha256: str, url: str | None = None) -> None:
    """Raise MissingArtifact or CorruptArtifact unless the store's bytes under `key` hash to `sha256`."""
    actual = sha256_of(key, url)
    if actual != sha256:
        raise CorruptArtifact(f"{key}: sha256 {actual[:12]}… differs from the recorded {sha256[:12]}…")


def stream_verified(key: str, sha256: str, url: str | None = None) -> Iterator[bytes]:
    """Check the artifact first, then return its bytes in chunks (two reads; nothing lands on this disk)."""
    check(key, sha256, url)

    def chunks() -> Iterator[bytes]:
        with store(url).open(key) as f:
            while chunk := f.read(CHUNK):
                yield chunk

    return chunks()


def download_verified(key: str, sha256: str, dest: Path) -> Path:
    """Copy the artifact to `dest` (atomically) if it hashes to `sha256`; raises MissingArtifact/CorruptArtifact."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    try:
        with store().open(key) as src, os.fdopen(fd, "wb") as dst:
            while chunk := src.read(CHUNK):
                h.update(chunk)
                dst.write(chunk)
        if h.hexdigest() != sha256:
            raise CorruptArtifact(f"{key}: sha256 {h.hexdigest()[:12]}… differs from the recorded {sha256[:12]}…")
        os.replace(tmp, dest)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return dest


def delete(key: str, url: str | None = None) -> None:
    """Remove one artifact (an old checkpoint under a retention rule); a missing one is fine."""
    store(url).delete(key)


def delete_job(job_id: int, url: str | None = None) -> int:
    """Remove every artifact of a job (when the job is deleted); returns how many went."""
    return store(url).delete_prefix(job_prefix(job_id))
