"""The database-backed artifact store (CNNLAB_ARTIFACT_STORE=db://): artifacts as 1 MiB rows of `artifact_chunks`.

For a fleet that shares nothing but PostgreSQL, and for small models: the lab's MNIST nets and LeNet write
checkpoints of 0.1-3 MB. Every byte goes through the database (its WAL, its backups, its vacuum), so above a few
tens of MB per checkpoint (VGG's ~110 MB) or a few GB in all, use object storage (s3://) instead.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import delete, func, insert, select

from shared.store.artifacts.base import MissingArtifact
from shared.store.db import retry
from shared.store.models import ArtifactChunk

CHUNK = 1 << 20  # bytes per row: small enough for any driver's buffers, large enough to keep rows few


class DbStore:
    """Artifacts in the service's own database; an upload is one transaction, so readers see all of it or none."""

    def __init__(self, url: str):
        self.url = url  # db:// : the database CNNLAB_DATABASE_URL names

    def put_file(self, local: Path, key: str) -> None:
        def write(s) -> None:  # the old chunks go and the new ones come in one transaction: an atomic replace
            s.execute(delete(ArtifactChunk).where(ArtifactChunk.key == key))
            with open(local, "rb") as f:
                seq = 0
                while (data := f.read(CHUNK)) or seq == 0:
                    s.execute(insert(ArtifactChunk).values(key=key, seq=seq, data=data))
                    seq += 1
                    if not data:
                        break

        retry(write, what=f"storing artifact {key}")

    def open(self, key: str) -> BinaryIO:
        count = retry(lambda s: s.scalar(select(func.count()).where(ArtifactChunk.key == key)), what=f"reading {key}")
        if not count:
            raise MissingArtifact(key)
        return io.BufferedReader(_Chunks(key, count), buffer_size=CHUNK)

    def exists(self, key: str) -> bool:
        return retry(lambda s: s.scalar(select(ArtifactChunk.seq).where(ArtifactChunk.key == key).limit(1)),
                     what=f"looking up {key}") is not None

    def delete(self, key: str) -> None:
        retry(lambda s: s.execute(delete(ArtifactChunk).where(ArtifactChunk.key == key)), what=f"deleting {key}")

    def delete_prefix(self, prefix: str) -> int:
        def drop(s) -> int:
            keys = s.scalars(select(ArtifactChunk.key).distinct().where(ArtifactChunk.key.startswith(prefix,
                                                                                                    autoescape=True)))
            keys = list(keys)
            if keys:
                s.execute(delete(ArtifactChunk).where(ArtifactChunk.key.in_(keys)))
            return len(keys)

        return retry(drop, what=f"deleting {prefix}*")


class _Chunks(io.RawIOBase):
    """Reads an artifact one chunk (one row, one short query) at a time: no transaction stays open while a
    client downloads."""

    def __init__(self, key: str, count: int):
        self.key, self.count, self.seq, self.pending = key, count, 0, b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if not self.pending and self.seq < self.count:
            seq = self.seq
            self.pending = retry(lambda s: s.scalar(select(ArtifactChunk.data).where(
                ArtifactChunk.key == self.key, ArtifactChunk.seq == seq)), what=f"reading {self.key}") or b""
            self.seq += 1
        n = min(len(buffer), len(self.pending))
        buffer[:n] = self.pending[:n]
        self.pending = self.pending[n:]
        return n
