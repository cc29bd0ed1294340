"""Rate limits (flask-limiter): writes and reads per token (per address without one); admin tokens are exempt.
An address is also limited in the 401s it gets (no token, or a bad one): past CNNLAB_RATE_LIMIT_UNAUTHORIZED,
everything it sends is 429, checked before its token is looked up, so a flood of bad tokens costs no queries.

The counters live in Redis (CNNLAB_RATELIMIT_STORAGE_URL, default the broker's Redis) so every gunicorn worker
shares them. When that store is unreachable the limiter falls back to per-process memory and never refuses a
request because of the store (fails open); it goes back to Redis once Redis answers again. Retry-After goes only on
a 429 (seconds until the window frees a request) and a 503 (errors.RETRY_AFTER_SECONDS), never on a success.
"""

from __future__ import annotations

import logging
import time

from flask import Flask, current_app, g, request
from flask_limiter import ApplicationLimit, Limiter, RateLimitExceeded
from limits import parse

from api.auth import WRITES
from api.errors import json_error
from shared.lab.settings import Settings

log = logging.getLogger(__name__)
READS = ("GET", "HEAD")
UNLIMITED = frozenset({"static", "meta.healthz"})  # a page's own files, and probes
STORE_TIMEOUT_SECONDS = 1  # a hung Redis must not hold requests: give up and fall back after this
UNAUTHORIZED_SCOPE = "unauthorized"  # the counter of 401s per address


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
    app.config.setdefault("RATE_LIMIT_UNAUTHORIZED", env.rate_limit_unauthorized)
    storage = app.config.setdefault("RATELIMIT_STORAGE_URI", env.ratelimit_storage_url)
    options = {"socket_connect_timeout": STORE_TIMEOUT_SECONDS, "socket_timeout": STORE_TIMEOUT_SECONDS} \
        if storage.startswith(("redis://", "rediss://")) else {}
    limits = [ApplicationLimit(lambda: current_app.config["RATE_LIMIT_WRITES"], scope="writes", methods=sorted(WRITES),
                               exempt_when=_exempt),
              ApplicationLimit(lambda: current_app.config["RATE_LIMIT_READS"], scope="reads", methods=READS,
                               exempt_when=_exempt)]
    # headers_enabled=False: flask-limiter would put Retry-After on every counted answer (and overwrite a 503's);
    # _rate_headers adds X-RateLimit-* instead, and Retry-After comes only from the 429 and 503 handlers.
    limiter = Limiter(_key, application_limits=limits, storage_uri=storage, storage_options=options,
                      swallow_errors=True, in_memory_fallback_enabled=True, headers_enabled=False, key_prefix="cnnlab")
    limiter.request_filter(lambda: request.endpoint in UNLIMITED)
    limiter.init_app(app)
    app.before_request_funcs.setdefault(None, []).insert(0, lambda: _refuse_unauthorized_flood(limiter))  # before auth
    app.after_request(lambda response: _count_unauthorized(limiter, response))
    app.after_request(lambda response: _rate_headers(limiter, response))
    app.register_error_handler(RateLimitExceeded, lambda e: _too_many(limiter, e))
    return limiter


def _too_many(limiter: Limiter, exc: RateLimitExceeded):
    """429 naming the limit, with Retry-After (seconds until the window frees a request)."""
    current = limiter.current_limit
    wait = max(1, int(current.reset_at - time.time())) if current is not None else 60
    kind = "writes" if request.method in WRITES else "reads"
    body, status = json_error(429, f"too many requests: at most {exc.limit.limit} {kind} per token (or address); "
                                   f"retry in {wait} s")
    return body, status, {"Retry-After": str(wait)}


def _unauthorized_limit():
    return parse(current_app.config["RATE_LIMIT_UNAUTHORIZED"])


def _refuse_unauthorized_flood(limiter: Limiter):
    """429 for an address past its 401s, before its token costs a database lookup; the store down: let it pass."""
    if request.endpoint in UNLIMITED:
        return None
    limit, address = _unauthorized_limit(), request.remote_addr or "unknown"
    try:
        if limiter.limiter.test(limit, UNAUTHORIZED_SCOPE, address):
            return None
        reset_at, _ = limiter.limiter.get_window_stats(limit, UNAUTHORIZED_SCOPE, address)
    except Exception as exc:  # noqa: BLE001 (any store failure): fail open, as the other limits do
        log.warning("rate-limit store unreachable, 401 limit not checked: %s", type(exc).__name__)
        return None
    wait = max(1, int(reset_at - time.time()))
    body, status = json_error(429, f"too many requests without a valid API token from this address: at most {limit} "
                                   f"answered 401; retry in {wait} s")
    return body, status, {"Retry-After": str(wait)}


def _count_unauthorized(limiter: Limiter, response):
    """Each 401 counts against the client's address (no token, a bad token, a failed sign-in)."""
    if response.status_code == 401:
        try:
            limiter.limiter.hit(_unauthorized_limit(), UNAUTHORIZED_SCOPE, request.remote_addr or "unknown")
        except Exception as exc:  # noqa: BLE001 (any store failure): fail open
            log.warning("rate-limit store unreachable, a 401 not counted: %s", type(exc).__name__)
    return response


def _rate_headers(limiter: Limiter, response):
    """X-RateLimit-Limit/Remaining/Reset on every counted answer (Retry-After only where its handler set it)."""
    current = limiter.current_limit
    if current is not None:
        try:
            response.headers.update({"X-RateLimit-Limit": str(current.limit.amount),
                                     "X-RateLimit-Remaining": str(current.remaining),
                                     "X-RateLimit-Reset": str(int(current.reset_at))})
        except Exception as exc:  # noqa: BLE001 (any store failure): the answer goes out without them
            log.warning("rate-limit store unreachable, no X-RateLimit headers: %s", type(exc).__name__)
    if response.status_code not in (429, 503):
        response.headers.pop("Retry-After", None)
    return response
