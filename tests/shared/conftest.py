"""Fixtures for the shared/ tests: the read-only data root and a private var/cache dir per test."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def data_dir(data_root) -> Path:
    """The provided data (MNIST raw IDX files, cifar10-jpeg): the root conftest's `data_root`."""
    return data_root


@pytest.fixture(scope="session")
def session_cache(cache_root) -> Path:
    """One decoded-split cache for the whole session, so MNIST is decoded once."""
    return cache_root


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
