"""The request's database session."""

from __future__ import annotations

from flask import current_app

from shared.store.db import session_scope


def session():
    """The request's database session, bound to the app's configured URL."""
    return session_scope(current_app.config["DATABASE_URL"])
