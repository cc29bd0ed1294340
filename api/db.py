"""The request's database session, bound to the app's configured URL."""

from flask import current_app

from shared.db import session_scope


def session():
    return session_scope(current_app.config["DATABASE_URL"])
