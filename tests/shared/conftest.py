"""Fixtures for the shared/ tests: the read-only data root and a private var/cache dir per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The provided data (MNIST raw IDX files, cifar10-jpeg); CNNLAB_TEST_DATA points elsewhere."""
    path = Path(os.environ.get("CNNLAB_TEST_DATA", REPO / ".." / "shared" / "data")).resolve()
    if not (path / "MNIST" / "raw").is_dir():
        message = f"no test data at {path}: expected MNIST/raw/ there (set CNNLAB_TEST_DATA)"
        if "CNNLAB_TEST_DATA" in os.environ:  # asked for explicitly: a wrong path is an error, not a skip
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory) -> Path:
    """One decoded-split cache for the whole session, so MNIST is decoded once."""
    return tmp_path_factory.mktemp("cnnlab-cache")


@pytest.fixture(autouse=True)
def isolated_var(tmp_path, session_cache, monkeypatch) -> Path:
    """Each test writes its database, checkpoints and runs under its own tmp dir, never under ./var."""
    var = tmp_path / "var"
    monkeypatch.setenv("CNNLAB_VAR_DIR", str(var))
    monkeypatch.setenv("CNNLAB_CACHE_DIR", str(session_cache))
    monkeypatch.delenv("CNNLAB_CHECKPOINT_DIR", raising=False)
    monkeypatch.delenv("CNNLAB_DOWNLOAD", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    return var
