"""Settings read from the environment, with the embedded defaults."""

from __future__ import annotations

import os
from pathlib import Path


def var_dir() -> Path:
    """Root for the embedded database, checkpoints and the dataset cache."""
    return Path(os.environ.get("CNNLAB_VAR_DIR", "var")).resolve()


def data_dir() -> Path:
    """Where datasets are looked up (and downloaded to when allowed)."""
    return Path(os.environ.get("CNNLAB_DATA_DIR", "data")).resolve()


def cache_dir() -> Path:
    """Decoded-split cache; separate from data_dir, which may be read-only."""
    return Path(os.environ.get("CNNLAB_CACHE_DIR", var_dir() / "cache")).resolve()


def checkpoint_dir() -> Path:
    return Path(os.environ.get("CNNLAB_CHECKPOINT_DIR", var_dir() / "checkpoints")).resolve()


def database_url() -> str:
    default = f"sqlite:///{var_dir() / 'cnnlab.db'}"
    return os.environ.get("CNNLAB_DATABASE_URL", default)


def redis_url() -> str:
    return os.environ.get("CNNLAB_REDIS_URL", "redis://127.0.0.1:6379/0")


def broker_url() -> str:
    """The Celery broker: Redis unless CNNLAB_BROKER_URL names another (e.g. filesystem://)."""
    return os.environ.get("CNNLAB_BROKER_URL", redis_url())


def allow_download() -> bool:
    return os.environ.get("CNNLAB_DOWNLOAD", "0").lower() in {"1", "true", "yes"}
