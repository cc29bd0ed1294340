"""Rate limits (flask-limiter): writes and reads per token (per address without one); admin tokens are exempt.

The counters live in Redis (CNNLAB_RATELIMIT_STORAGE_URL, default the broker's Redis) so every gunicorn worker
shares them. When that store is unreachable the limiter falls back to per-process memory and never refuses a
request because of the store (fails open); it goes back to Redis once Redis answers again.
"""

from __future__ import annotations

import math
import time

from flask import Flask, current_app, g, request
from flask_limiter import ApplicationLimit, Limiter, RateLimitExceeded

from api.auth import WRITES
from api.errors import json_error
from shared.lab.settings import Settings

READS = ("GET", "HEAD")
UNLIMITED = frozenset({"static", "meta.healthz"})  # a page's own files, and probes
STORE_TIMEOUT_SECONDS = 1  # a hung Redis must not hold requests: give up and fall back after this


def _key() -> str:
    caller = g.get("caller")
    return f"token:{caller.name}" if caller is not None else f"addr:{request.remote_addr}"


def _exempt() -> bool:
    caller = g.get("caller")
    return caller is not None and caller.admin


def init_app(app: Flask, env: Settings) -> Limiter:
    """Attach the limiter; call after auth.init_app, so the caller is known when the limits are checked."""
    app.config.setdefault("RATE_LIMIT_WRITES", env.rate_limit_writes)
    app.config.setdefault("RATE_LIMIT_READS", env.rate_limit_reads)
    storage = app.config.setdefault("RATELIMIT_STORAGE_URI", env.ratelimit_storage_url)
    options = {"socket_connect_timeout": STORE_TIMEOUT_SECONDS, "socket_timeout": STORE_TIMEOUT_SECONDS} \
        if storage.startswith(("redis://", "rediss://")) else {}
    limits = [ApplicationLimit(lambda: current_app.config["RATE_LIMIT_WRITES"], scope="writes", methods=sorted(WRITES),
                               exempt_when=_exempt),
              ApplicationLimit(lambda: current_app.config["RATE_LIMIT_READS"], scope="reads", methods=READS,
                               exempt_when=_exempt)]
    limiter = Limiter(_key, application_limits=limits, storage_uri=storage, storage_options=options,
                      swallow_errors=True, in_memory_fallback_enabled=True, headers_enabled=True,
                      retry_after="delta-seconds", key_prefix="cnnlab")
    limiter.request_filter(lambda: request.endpoint in UNLIMITED)
    limiter.init_app(app)
    app.register_error_handler(RateLimitExceeded, lambda e: _too_many(limiter, e))
    return limiter


def _too_many(limiter: Limiter, exc: RateLimitExceeded):
    """429 naming the limit, with Retry-After (seconds until the window frees a request)."""
    current = limiter.current_limit
    wait = max(1, math.ceil(current.reset_at - time.time())) if current is not None else 60
    kind = "writes" if request.method in WRITES else "reads"
    body, status = json_error(429, f"too many requests: at most {exc.limit.limit} {kind} per token (or address); "
                                   f"retry in {wait} s")
    return body, status, {"Retry-After": str(wait)}
