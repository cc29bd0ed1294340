"""Every CNNLAB_* setting, read from the environment in this one place (pydantic-settings)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """The service's settings; each field is the environment variable CNNLAB_<FIELD>."""

    model_config = SettingsConfigDict(env_prefix="CNNLAB_", extra="ignore")

    var_dir: Path = Field(Path("var"), description="root of the embedded database, checkpoints and caches")
    data_dir: Path = Field(Path("data"), description="where datasets are looked up (and downloaded to)")
    cache_dir: Path | None = Field(None, description="decoded-split cache (default VAR_DIR/cache)")
    checkpoint_dir: Path | None = Field(None, description="a worker's job files (default VAR_DIR/checkpoints)")
    artifact_store: str | None = Field(None, description="where checkpoints and logs go for every machine to read: "
                                       "file:///path, s3://bucket/prefix or db:// (default file://VAR_DIR/artifacts)")
    database_url: str | None = Field(None, description="SQLAlchemy URL (default sqlite:///VAR_DIR/cnnlab.db)")
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis, the Celery broker")
    broker_url: str | None = Field(None, description="another Celery broker (e.g. filesystem://); default REDIS_URL")
    download: bool = Field(False, description="download a missing built-in dataset (MNIST, CIFAR-10)")
    lease_seconds: float = Field(60.0, gt=0, description="a running job whose heartbeat is older is taken over")
    db_outage_seconds: float = Field(600.0, gt=0, description="how long workers and trainers wait out a database "
                                     "outage (retrying with backoff) before a job fails")
    pack_seeds: Literal["never", "gpu", "always"] = Field(
        "gpu", description="train a sweep cell's seeds as one pack (stacked where it pays): on GPU workers, always, "
        "or never")
    pack_max: int = Field(64, ge=1, description="most jobs in one pack")
    max_attempts: int = Field(3, ge=1, description="tries of a job whose trainer is killed by a signal (OOM, "
                              "an operator) before it fails; a Python error fails it at once")
    dispatch_seconds: float = Field(10.0, gt=0, description="how often workers look for jobs whose broker message "
                                    "is lost, and the least time between two sends of one job")
    visibility_timeout: int = Field(6 * 3600, gt=0, description="seconds before Redis redelivers an unacked task")
    max_body_bytes: int = Field(64 * 1024, gt=0, description="larger request bodies are answered 413")
    cuda_graphs: bool = Field(True, description="replay single-GPU training steps as CUDA graphs")
    commit: str | None = Field(None, description="code commit recorded with results (default: git rev-parse)")
    api_sqlite_busy_seconds: float = Field(2.0, gt=0, description="seconds an API request waits for another "
                                           "process's SQLite write lock before it answers 503 (workers wait 30 s)")
    trainer_base_gb: float = Field(1.0, ge=0, description="resident memory of one trainer process before its job's "
                                   "model and data (python, torch, the trainer's modules: measured 0.92 GB with the "
                                   "CUDA build of torch 2.14, 0.53 GB with the CPU-only build; "
                                   "tests/shared/train/test_memory.py); the submit-time estimate adds it per rank")
    queue_memory_gb: dict[str, float] = Field(
        default_factory=lambda: {"cpu": round(0.9 * _host_memory_gb(), 1), "gpu": 80.0},
        description="memory a job may need, per queue (JSON); larger jobs are refused at submit")
    queue_max_world_size: dict[str, int] = Field(
        default_factory=lambda: {"cpu": os.cpu_count() or 1, "gpu": 8},
        description="most ranks (world_size) a job may ask for, per queue (JSON)")
    port: int = Field(5000, description="the API's port under `make run`")
    api_workers: int = Field(2, ge=1, description="gunicorn worker processes of the API (gunicorn.conf.py)")
    api_connections: int = Field(1000, ge=1, description="open client connections per API worker process (gevent "
                                 "greenlets; slow clients included)")
    client_timeout_seconds: float = Field(10.0, gt=0, description="the API drops a client that sends nothing for "
                                          "this long while it sends its request")
    warm_trainers: bool = Field(True, description="a worker slot keeps one trainer process alive between jobs "
                                "(world_size 1); off: a fresh process per job")
    trainer_threads: int | None = Field(None, ge=1, description="torch's CPU threads per trainer process (default: "
                                        "torch's, one per core; `python -m worker --per-gpu N` sets cores / N, "
                                        "auto: cores / CNNLAB_AUTO_SLOTS)")
    trainer_max_rss_mb: float = Field(4096.0, gt=0, description="a warm trainer whose resident memory (MiB) is "
                                      "above this after a job is replaced before the next one")
    admit: Literal["all", "measured"] = Field("all", description="`measured`: a slot starts a job only when the "
                                              "device's measured free memory and utilization leave room for it "
                                              "(worker/admission.py; `python -m worker --per-gpu auto` sets it)")
    auto_slots: int = Field(8, ge=1, description="slots (jobs side by side) of `python -m worker --per-gpu auto`")
    auto_memory_gb: float | None = Field(None, gt=0, description="caps the memory (GB) a measured-admission worker "
                                         "gives its jobs, counted by their estimates; default: what is measured free")
    auto_margin_gb: float = Field(0.5, ge=0, description="kept free beyond a job's estimate when admitting it (the "
                                  "estimate is a floor: it leaves out the allocator's slack and kernels' buffers)")
    auto_busy_percent: float = Field(90.0, gt=0, le=100, description="a device measured at least this busy (NVML's "
                                     "GPU utilization, or all cores' CPU %) admits no further job; 100: never busy")
    auto_settle_seconds: float = Field(2.0, ge=0, description="a job admitted less than this ago has not shown in the "
                                       "utilization yet: the next admission waits for it")
    auto_wait_seconds: float = Field(5.0, ge=0.5, description="how long a slot holds a job it cannot admit, measuring "
                                     "again every 0.5 s, before it gives the job back to the queue")
    resident_splits: int = Field(4, ge=0, description="decoded dataset splits a process keeps in memory "
                                 "between runs (least recently used dropped first; 0: none)")
    server: str = Field("http://127.0.0.1:5000", description="the service the `cnnlab` commands talk to "
                        "(submit, jobs, logs, cancel, pull, train --server)")
    token: str | None = Field(None, description="the API token `cnnlab` sends as `Authorization: Bearer`")
    stop_grace_seconds: float = Field(120.0, gt=0, description="a cancelled run gets this long to reach a step "
                                      "boundary before its process is killed")
    drain_seconds: float = Field(60.0, ge=0, description="on SIGTERM a worker lets its running job train until its "
                                 "next checkpoint, at most this long, then queues it again for another worker")
    preempt_priority: int = Field(8, ge=0, le=10, description="a queued job of at least this priority, waiting "
                                  "behind a running job of lower priority on a busy queue, makes that job yield at its "
                                  "next checkpoint (queued again, its attempt not counted); 10: never")
    system_sample_seconds: float = Field(5.0, gt=0, description="how often the supervisor samples the trainer's "
                                         "CPU %, resident memory and GPU use (stored with the job)")

    secret_key: str | None = Field(None, description="signs the pages' session cookie; default: a random key kept in "
                                   "VAR_DIR/secret_key (mode 0600), so every gunicorn worker uses the same one")
    cookie_secure: bool = Field(False, description="send the session cookie over HTTPS only (on behind TLS)")
    reads_require_token: bool = Field(False, description="reads (GET) need a valid API token too; off: reads are open, "
                                      "writes always need one")
    rate_limit_writes: str = Field("120/minute", description="writes (POST, DELETE) per token, or per address "
                                   "without one (flask-limiter notation; admin tokens are exempt)")
    rate_limit_reads: str = Field("1200/minute", description="reads per token, or per address without one")
    rate_limit_unauthorized: str = Field("60/minute", description="401 answers (no token, or a bad one) per address; "
                                         "past it every request from that address is 429 until the window frees")
    ratelimit_storage_url: str | None = Field(None, description="where rate-limit counters live (default REDIS_URL; "
                                              "memory:// for one process); if it is down, requests are not refused")
    model_packages: list[str] = Field(default_factory=list, description="installed packages (distribution names, "
                                      "JSON list) whose `cnnlab.models` entry points the API and workers load; "
                                      "empty: only the built-in nets")
    notify_hosts: list[str] = Field(default_factory=list, description="hosts (`host` or `host:port`, JSON list) a "
                                    "job's, sweep's or study's `notify.url` may name; empty: notifications are off")
    notify_attempts: int = Field(8, ge=1, description="delivery attempts of one notification before it is given up")
    notify_retry_seconds: float = Field(10.0, gt=0, description="the wait after a failed delivery, doubled after "
                                        "each further failure (10 s, 20 s, 40 s, ...)")
    max_active_jobs: int = Field(1000, ge=1, description="queued + running jobs one token may own (a sweep counts as "
                                 "its jobs; admin tokens are exempt)")

    @model_validator(mode="after")
    def _derived(self) -> "Settings":
        """Absolute paths, and the defaults that hang off var_dir and redis_url."""
        self.var_dir = self.var_dir.resolve()
        self.data_dir = self.data_dir.resolve()
        self.cache_dir = (self.cache_dir or self.var_dir / "cache").resolve()
        self.checkpoint_dir = (self.checkpoint_dir or self.var_dir / "checkpoints").resolve()
        self.database_url = self.database_url or f"sqlite:///{self.var_dir / 'cnnlab.db'}"
        self.broker_url = self.broker_url or self.redis_url
        self.ratelimit_storage_url = self.ratelimit_storage_url or self.redis_url
        return self


def _host_memory_gb() -> float:
    """This machine's memory (the default for the cpu queue's limit assumes workers like the API's host)."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


def settings() -> Settings:
    """The settings as the environment has them now: built again whenever a CNNLAB_* variable changed (tests change
    them), else the same object. Building takes ~15 ms of CPU, and a job asked ~30 times: 0.4 s of a 1.2 s job."""
    prefix = Settings.model_config["env_prefix"]
    return _settings_for(tuple(sorted((k, v) for k, v in os.environ.items() if k.upper().startswith(prefix))))


@lru_cache(maxsize=16)
def _settings_for(environment: tuple[tuple[str, str], ...]) -> Settings:
    return Settings()
