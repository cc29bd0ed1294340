"""A directory or a bucket as an artifact store, through fsspec (file://, s3://)."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path
from typing import BinaryIO

from shared.store.artifacts.base import CHUNK, MissingArtifact


class FsspecStore:
    """A directory or a bucket through fsspec (file://, s3://, and any other protocol fsspec knows)."""

    def __init__(self, url: str):
        import fsspec  # fsspec and its backends (s3fs) load only for a store that uses them

        self.url = url
        # Listings are not cached: another machine may have written a key since this process last looked.
        options = {"use_listings_cache": False, "skip_instance_cache": True} if url.startswith("s3://") else {}
        self.fs, root = fsspec.core.url_to_fs(url, **options)
        self.root = root.rstrip("/")
        protocols = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        self.local = "file" in protocols
        if self.local:
            Path(self.root).mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> str:
        if not key or key.startswith("/") or ".." in key.split("/"):
            raise ValueError(f"bad artifact key {key!r}")
        return f"{self.root}/{key}"

    def put_file(self, local: Path, key: str) -> None:
        target = self._path(key)
        if not self.local:  # one PUT (or a multipart upload completed at once): S3 shows all of it or nothing
            self.fs.put_file(str(local), target)
            return
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        tmp = f"{target}.{uuid.uuid4().hex}.tmp"
        with open(local, "rb") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, CHUNK)
            dst.flush()
            os.fsync(dst.fileno())
        os.replace(tmp, target)  # atomic on one filesystem (NFS included)

    def open(self, key: str) -> BinaryIO:
        try:
            return self.fs.open(self._path(key), "rb")
        except FileNotFoundError:
            raise MissingArtifact(key) from None

    def exists(self, key: str) -> bool:
        return self.fs.exists(self._path(key))

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self._path(key))

    def delete_prefix(self, prefix: str) -> int:
        base = self._path(prefix.rstrip("/"))
        try:
            found = [p for p in self.fs.find(base) if not p.endswith(".tmp")]
        except FileNotFoundError:
            return 0
        if found:
            self.fs.rm(found)
        if self.local:
            shutil.rmtree(base, ignore_errors=True)
        return len(found)
