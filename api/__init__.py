"""cnnlab's HTTP API and results pages: `create_app(config=None)`, one blueprint per area."""

from __future__ import annotations

from flask import Flask, current_app

from shared.settings import settings
from shared.store.db import session_scope


def create_app(config: dict | None = None) -> Flask:
    """Build the app; settings come from the environment unless `config` overrides them."""
    env = settings()
    app = Flask(__name__)
    app.config.update(
        DATABASE_URL=env.database_url,
        BROKER_URL=env.broker_url,
        DATA_DIR=env.data_dir,
        MAX_CONTENT_LENGTH=env.max_body_bytes,  # bigger bodies get 413
    )
    app.config.update(config or {})
    app.json.sort_keys = False

    from api import errors, jobs, logs, meta, metrics, pages, studies, sweeps

    errors.register(app)
    for module in (jobs, logs, meta, metrics, pages, studies, sweeps):
        app.register_blueprint(module.bp)
    return app


def session():
    """The request's database session, bound to the app's configured URL."""
    return session_scope(current_app.config["DATABASE_URL"])
