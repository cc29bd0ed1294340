"""`cnnlab tokens`: create, list and revoke the API's tokens in the configured database.

The only `cnnlab` commands that open the database: the store (SQLAlchemy) is imported where they run, so the
parser, and with it `cnnlab train` and `cnnlab sweep`, load with torch alone."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from shared.lab.settings import settings


def add_parser(sub) -> None:
    """Register `cnnlab tokens` on the main parser's subcommands."""
    tk = sub.add_parser("tokens", help="API tokens: create (printed once), list, revoke")
    actions = tk.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create a token and print it alone on stdout (it is stored hashed)")
    create.add_argument("name", metavar="NAME", help="who it is for; jobs record it as their owner")
    create.add_argument("--admin", action="store_true", help="may cancel and download anyone's jobs; no limits")
    actions.add_parser("list", help="the tokens: name, admin, created, last used, revoked")
    revoke = actions.add_parser("revoke", help="revoke a token at once")
    revoke.add_argument("name", metavar="NAME")
    first = actions.add_parser("first-admin", help="create an admin token only if no usable one exists (make run)")
    first.add_argument("--save", type=Path, metavar="FILE", help="also write it to FILE, readable by you alone (0600)")


def run(args: argparse.Namespace) -> int:
    """Run the token command in one session of the configured database; bad input is a one-line error."""
    from shared.store.db import session_scope  # SQLAlchemy: only when a token command runs
    from shared.store.jobs import Conflict, NotFound  # SQLAlchemy: only when a token command runs

    try:
        with session_scope(settings().database_url) as s:
            return ACTIONS[args.action](s, args)
    except (ValueError, Conflict, NotFound) as exc:
        print(f"cnnlab: error: {exc}", file=sys.stderr)
        return 2


def _create(s, args) -> int:
    from shared.store.tokens import create_token  # SQLAlchemy: only when a token command runs

    token = create_token(s, args.name, admin=args.admin)
    s.commit()  # stored before it is shown
    print(token)
    return 0


def _list(s, args) -> int:
    from shared.store.tokens import list_tokens  # SQLAlchemy: only when a token command runs

    when = lambda t: t.strftime("%Y-%m-%d %H:%M") if t else "-"
    rows = [(t.name, "admin" if t.admin else "-", when(t.created_at), when(t.last_used_at),
             when(t.revoked_at) if t.revoked_at else "active") for t in list_tokens(s)]
    header = ("NAME", "ADMIN", "CREATED (UTC)", "LAST USED", "REVOKED")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    return 0


def _revoke(s, args) -> int:
    from shared.store.tokens import revoke_token  # SQLAlchemy: only when a token command runs

    revoke_token(s, args.name)
    print(f"revoked {args.name}", file=sys.stderr)
    return 0


def _first_admin(s, args) -> int:
    from shared.store.tokens import first_admin  # SQLAlchemy: only when a token command runs

    token = first_admin(s)
    if token is None:
        return 0
    s.commit()
    if args.save:
        save(args.save, token)
    print(token)
    return 0


def save(path: Path, token: str) -> None:
    """Write the token to a file only its owner may read (created 0600, never world-readable for a moment)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    os.chmod(path, 0o600)  # an older file may have had wider bits


ACTIONS = {"create": _create, "list": _list, "revoke": _revoke, "first-admin": _first_admin}
