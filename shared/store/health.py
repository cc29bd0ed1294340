"""Is the database reachable (and, for SQLite, writable now), is the broker reachable: for /healthz."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import text
from sqlalchemy.engine import make_url

from shared.store.db import session_scope

State = Literal["ok", "down", "locked"]


@dataclass(frozen=True)
class Probe:
    """One dependency's state; `error` is the driver's text (hosts, ports, names: for token holders only)."""

    state: State
    error: str | None = None


def probe_database(url: str) -> Probe:
    """'down' if a query fails; 'locked' if SQLite's write lock is held now (writes would wait, then 503)."""
    try:
        with session_scope(url) as s:
            s.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means down; the text is kept for token holders
        return Probe("down", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    u = make_url(url)
    if u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:":
        return _sqlite_write_lock(u.database)
    return Probe("ok")


def _sqlite_write_lock(path: str) -> Probe:
    """Take SQLite's write lock without waiting (timeout 0) and give it straight back."""
    con = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
        con.execute("ROLLBACK")
        return Probe("ok")
    except sqlite3.OperationalError as exc:
        return Probe("locked" if "locked" in str(exc) or "busy" in str(exc) else "down", str(exc))
    finally:
        con.close()


def probe_broker(url: str) -> Probe:
    """PING a Redis broker (1 s timeouts); the embedded filesystem broker is always there."""
    if url.startswith("filesystem"):
        return Probe("ok")
    if not url.startswith("redis"):
        return Probe("down", f"cannot probe broker {url.split('://')[0]}")
    import redis  # only for a Redis broker: the filesystem broker needs none

    try:
        redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping()
    except Exception as exc:  # noqa: BLE001 - any failure means down
        return Probe("down", str(exc))
    return Probe("ok")
