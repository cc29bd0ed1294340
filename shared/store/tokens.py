"""API tokens and what they own: create, list, revoke, authenticate; job ownership and the per-token cap."""

from __future__ import annotations

import hashlib
import itertools
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.store.jobs import Conflict, NotFound
from shared.store.models import ACTIVE, Job, Sweep, Token, utcnow

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
TOUCH_EVERY = timedelta(minutes=1)  # last_used_at is refreshed at most this often: no write on every request


@dataclass(frozen=True)
class Caller:
    """Who a request acts as: a token's name (what jobs record as their owner) and whether it is an admin's."""

    name: str
    admin: bool

    def may_manage(self, owner: str | None) -> bool:
        """Cancel or download what `owner` made: its owner or an admin (unowned, legacy rows: admins only)."""
        return self.admin or (owner is not None and owner == self.name)


@dataclass(frozen=True)
class TokenInfo:
    """A token as `cnnlab tokens list` shows it (never the token itself)."""

    name: str
    admin: bool
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class OverCap(Exception):
    """Queuing these jobs would put the token over its cap of queued + running jobs."""

    def __init__(self, owner: str, cap: int, active: int, adding: int):
        super().__init__(f"{owner!r} may have at most {cap} queued or running jobs; it has {active - adding} and this "
                         f"request adds {adding}")
        self.cap, self.active, self.adding = cap, active, adding


def digest(token: str) -> str:
    """The stored form of a token: its sha256 in hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, name: str, admin: bool = False) -> str:
    """Store a new random token under `name` and return it: the only time it is ever seen."""
    if not NAME.match(name):
        raise ValueError(f"token name {name!r}: 1-100 letters, digits and . _ @ -, starting with a letter or digit")
    token = secrets.token_urlsafe(32)  # 256 random bits
    session.add(Token(name=name, sha256=digest(token), admin=admin))
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict(f"a token named {name!r} exists already (names stay taken after a revoke)") from None
    return token


def list_tokens(session: Session) -> list[TokenInfo]:
    return [TokenInfo(t.name, t.admin, t.created_at, t.revoked_at, t.last_used_at)
            for t in session.scalars(select(Token).order_by(Token.id))]


def revoke_token(session: Session, name: str) -> None:
    """Revoke at once: the next request with it is answered 401, and its pages' session ends."""
    token = session.scalar(select(Token).where(Token.name == name))
    if token is None:
        raise NotFound(f"no token named {name!r}")
    if token.revoked_at is None:
        token.revoked_at = utcnow()


def authenticate(session: Session, sha256: str) -> Caller | None:
    """The caller whose unrevoked token has this digest, or None."""
    token = session.scalar(select(Token).where(Token.sha256 == sha256, Token.revoked_at.is_(None)))
    if token is None:
        return None
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at > TOUCH_EVERY:
        token.last_used_at = now
    return Caller(token.name, token.admin)


def has_admin(session: Session) -> bool:
    return session.scalar(select(Token.id).where(Token.admin.is_(True), Token.revoked_at.is_(None)).limit(1)) is not None


def first_admin(session: Session, name: str = "admin") -> str | None:
    """A new admin token when no usable one exists (`make run`'s first start), else None."""
    if has_admin(session):
        return None
    taken = set(session.scalars(select(Token.name)))
    unique = next(c for c in (name if i == 0 else f"{name}-{i}" for i in itertools.count()) if c not in taken)
    return create_token(session, unique, admin=True)


def claim(session: Session, owner: str, *, job_ids: list[int] = (), sweep_ids: list[int] = ()) -> int:
    """Record `owner` on new jobs and sweeps (a sweep's jobs too); how many jobs that was."""
    claimed = 0
    if job_ids:
        claimed += session.execute(update(Job).where(Job.id.in_(job_ids)).values(owner=owner)).rowcount
    if sweep_ids:
        session.execute(update(Sweep).where(Sweep.id.in_(sweep_ids)).values(owner=owner))
        claimed += session.execute(update(Job).where(Job.sweep_id.in_(sweep_ids)).values(owner=owner)).rowcount
    for obj in list(session.identity_map.values()):  # rows the caller already holds: read the owner afresh
        if isinstance(obj, Job | Sweep):
            session.expire(obj, ["owner"])
    return claimed


def active_jobs(session: Session, owner: str) -> int:
    return session.scalar(select(func.count()).select_from(Job).where(Job.owner == owner, Job.status.in_(ACTIVE)))


def check_cap(session: Session, caller: Caller, cap: int, adding: int) -> None:
    """After claiming `adding` new jobs (not yet committed): refuse the lot if the caller is now over `cap`."""
    if caller.admin or adding == 0:
        return
    active = active_jobs(session, caller.name)
    if active > cap:
        raise OverCap(caller.name, cap, active, adding)
