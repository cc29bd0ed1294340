"""Checkpoints written atomically with a sha256 beside them, verified on every load."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path

import torch

FORMAT = 2  # 2: every net keeps its trunk in `features` and its head in `classifier`


class CheckpointError(Exception):
    """A checkpoint that is missing, corrupt or incompatible."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save(state: dict, path: Path) -> str:
    """Write `state` to `path` via temp file + fsync + rename; returns the file's sha256."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save({"format": FORMAT, **state}, buf)
    data = buf.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    for target, payload in ((path, data), (_sidecar(path), f"{digest}  {path.name}\n".encode())):
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{target.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)  # readers see the old file or the new one, never half of one
    return digest


def load(path: Path, expected_sha256: str | None = None) -> dict:
    """Load a checkpoint after checking its sha256 against `expected_sha256` or its sidecar file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    expected = expected_sha256
    if expected is None:
        side = _sidecar(path)
        if not side.is_file():
            raise CheckpointError(f"checkpoint {path} has no {side.name} to verify it against")
        expected = side.read_text().split()[0]
    actual = sha256_file(path)
    if actual != expected:
        raise CheckpointError(f"checkpoint {path} is corrupt: sha256 {actual[:12]}… != expected {expected[:12]}…")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path} has format {state.get('format')}, this cnnlab reads {FORMAT}")
    return state


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def path_for(out_dir: Path, epoch: int) -> Path:
    return Path(out_dir) / f"epoch-{epoch:03d}.pt"


def prune(out_dir: Path, epoch: int, keep: int) -> None:
    """Delete the checkpoint that falls out of the newest `keep` once `epoch` is written (file and sidecar)."""
    if epoch - keep >= 1:
        old = path_for(out_dir, epoch - keep)
        old.unlink(missing_ok=True)
        _sidecar(old).unlink(missing_ok=True)
