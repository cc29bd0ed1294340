"""Notifications: the webhook a job, sweep or study names (`notify: {"url": ...}`), checked against the admin's
allowed hosts (CNNLAB_NOTIFY_HOSTS), and the backoff between its delivery attempts."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from shared.lab.settings import settings
from shared.lab.specs import SpecError

SCHEMES = ("http", "https")
URL = r"^https?://[^\s/@:?#]+(:[0-9]{1,5})?([/?#]\S*)?$"  # a host, no credentials: the schema says what it can


class NotifyRequest(BaseModel):
    """`notify` in a POST body: one JSON POST to `url` when the job, sweep or study run ends."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2000, pattern=URL, description="http(s) URL on a host CNNLAB_NOTIFY_HOSTS allows; it gets one "
                     "JSON POST when the job, sweep or study run ends (retried with backoff until a 2xx)")


def host_of(url: str) -> tuple[str, int | None] | None:
    """(host, port) of an http(s) URL without credentials; None for anything else."""
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError for a port that is not a number
    except ValueError:
        return None
    if parts.scheme not in SCHEMES or not parts.hostname or parts.username or parts.password:
        return None
    return parts.hostname.lower(), port


def allowed(url: str, hosts: list[str] | None = None) -> bool:
    """Whether `url` goes to an allowed host: an entry `host` allows every port of it, `host:port` that one."""
    target = host_of(url)
    if target is None:
        return False
    entries = {h.strip().lower() for h in (settings().notify_hosts if hosts is None else hosts)}
    host, port = target
    return host in entries or f"{host}:{port}" in entries


def check_notify(notify: NotifyRequest | None) -> str | None:
    """The URL to notify, or None; a SpecError naming `notify.url` for a URL off the allowed hosts."""
    if notify is None:
        return None
    if host_of(notify.url) is None:
        raise SpecError([{"field": "notify.url", "message": "must be an http:// or https:// URL with a host "
                                                            "and no credentials"}])
    if not allowed(notify.url):
        hosts = settings().notify_hosts
        why = f"allowed: {', '.join(hosts)}" if hosts else "notifications are off: CNNLAB_NOTIFY_HOSTS is empty"
        raise SpecError([{"field": "notify.url", "message": f"host {host_of(notify.url)[0]!r} is not allowed ({why})"}])
    return notify.url


def backoff_seconds(attempts: int) -> float:
    """The wait after the `attempts`-th failed attempt: CNNLAB_NOTIFY_RETRY_SECONDS doubled each time (1-based)."""
    return settings().notify_retry_seconds * 2 ** (max(attempts, 1) - 1)
