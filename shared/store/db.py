"""Database engines and sessions: one engine per URL per process, sessions that commit or roll back."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DataError as DataError  # re-exported: the API answers it without importing SQLAlchemy
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from shared.lab.settings import settings

log = logging.getLogger(__name__)
T = TypeVar("T")

_ENGINES: dict[str, Engine] = {}
SQLITE_BUSY_SECONDS = 30  # how long a worker or trainer waits for another process's SQLite write lock
_busy_seconds: float = SQLITE_BUSY_SECONDS


def wait_for_sqlite_locks(seconds: float) -> None:
    """How long this process's SQLite sessions wait for another writer's lock before "database is locked" (the
    API: briefly, then a 503 with Retry-After, not a request held for 30 s)."""
    global _busy_seconds
    _busy_seconds = seconds


def get_engine(url: str | None = None) -> Engine:
    """One engine per URL per process; SQLite gets WAL and a busy timeout for API + worker + trainer."""
    url = url or settings().database_url
    if url not in _ENGINES:
        _ENGINES[url] = _create_engine(url)
    return _ENGINES[url]


def close_engine(url: str) -> None:
    """Close this process's connections to `url` (before dropping that database, say)."""
    engine = _ENGINES.pop(url, None)
    if engine is not None:
        engine.dispose()
        _sessionmaker.cache_clear()


def forget_connections() -> None:
    """In a forked child: drop the parent's pooled connections without closing them under the parent."""
    for engine in _ENGINES.values():
        engine.dispose(close=False)


def _create_engine(url: str) -> Engine:
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_SECONDS})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "checkout")
        def _busy_timeout(dbapi_conn, *_):  # on checkout, not connect: wait_for_sqlite_locks may come later
            cur = dbapi_conn.cursor()
            cur.execute(f"PRAGMA busy_timeout={int(_busy_seconds * 1000)}")
            cur.close()

        return engine
    # A database that is down must fail fast (the API answers 503 and the caller retries), never hang:
    # 3 s to connect, 5 s to wait for a pooled connection.
    connect = {"connect_timeout": 3} if u.get_backend_name() == "postgresql" else {}
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, pool_timeout=5, connect_args=connect)


@lru_cache(maxsize=8)
def _sessionmaker(url: str | None) -> sessionmaker[Session]:
    return sessionmaker(get_engine(url), expire_on_commit=False)


@contextlib.contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    session = _sessionmaker(url or settings().database_url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def ping(session: Session) -> None:
    """A round trip to the database (the health check): raises whatever the database's failure is."""
    session.execute(text("SELECT 1"))


# The database is down, restarting, locked or out of pooled connections: the API answers these 503 (DataError,
# re-exported above, is a value the database refuses: 400). Callers catch them without importing SQLAlchemy.
UNAVAILABLE = (OperationalError, InterfaceError, PoolTimeout)


def connect(url: str | None = None) -> None:
    """Open a pooled connection to the database now (a process warming up), so the first write does not wait."""
    with session_scope(url) as s:
        s.execute(text("SELECT 1"))


# Any failure of the database or of a statement: what callers outside the store catch (they import no SQLAlchemy).
DatabaseError = SQLAlchemyError

# The database is unreachable or busy (down, restarting, a dropped connection, a locked SQLite file, an
# exhausted pool): worth waiting out. Anything else (a constraint, bad SQL, a missing table) is reported at once.
TRANSIENT = (*UNAVAILABLE, DisconnectionError)
SQLITE_BUSY = ("database is locked", "database table is locked", "unable to open database file", "disk I/O error")


def transient(exc: Exception) -> bool:
    """Whether `exc` says the database is unreachable or busy rather than that the request is wrong."""
    if not isinstance(exc, TRANSIENT):
        return False
    orig = getattr(exc, "orig", None)
    if orig is not None and type(orig).__module__.startswith("sqlite3"):  # SQLite's OperationalError is both kinds
        return any(text in str(orig) for text in SQLITE_BUSY)
    return True


def retry(action: Callable[[Session], T], *, url: str | None = None, seconds: float | None = None,
          what: str = "a database write") -> T:
    """Run `action` in a session of its own, retrying with backoff (0.5 s doubling to 10 s) while the database is
    unreachable, for up to `seconds` (default CNNLAB_DB_OUTAGE_SECONDS); then the last error is raised."""
    deadline = time.monotonic() + (settings().db_outage_seconds if seconds is None else seconds)
    pause, failures = 0.5, 0
    while True:
        try:
            with session_scope(url) as s:
                return action(s)
        except TRANSIENT as exc:
            failures += 1
            if not transient(exc) or time.monotonic() + pause > deadline:
                raise
            if failures == 1:
                log.warning("%s waits for the database: %s", what, str(exc).splitlines()[0])
            time.sleep(pause)
            pause = min(pause * 2, 10.0)
