"""What every artifact backend offers, and the errors a reader sees."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO, Protocol

CHUNK = 1 << 20  # bytes read or sent at a time when streaming


class MissingArtifact(LookupError):
    """The store has nothing under that key."""


class CorruptArtifact(ValueError):
    """What the store holds under a key does not match the recorded sha256."""


class Store(Protocol):
    """What every backend offers; keys are '/'-separated and relative to the store's root."""

    url: str

    def put_file(self, local: Path, key: str) -> None: ...  # atomic: readers never see part of it
    def open(self, key: str) -> BinaryIO: ...  # raises MissingArtifact
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...  # a missing key is not an error
    def delete_prefix(self, prefix: str) -> int: ...  # returns how many artifacts went
