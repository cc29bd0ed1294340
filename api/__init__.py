"""cnnlab's HTTP API and results pages: `create_app(config=None)`, one blueprint per area and the pages under `pages`."""

from __future__ import annotations

from flask import Flask

from api import actions, auth, errors, handout, jobs, limits, logs, meta, metrics, pages, queues, report, studies, sweeps
from shared.lab.settings import settings
from shared.store.artifacts import default_url
from shared.store.db import wait_for_sqlite_locks


def create_app(config: dict | None = None) -> Flask:
    """Build the app; settings come from the environment unless `config` overrides them."""
    env = settings()
    app = Flask(__name__)
    app.config.update(
        DATABASE_URL=env.database_url,
        BROKER_URL=env.broker_url,
        DATA_DIR=env.data_dir,
        ARTIFACT_STORE=default_url(),  # checkpoints and logs, whichever machine wrote them
        CHECKPOINT_DIR=env.checkpoint_dir,  # where a deleted job's files are removed from
        MAX_CONTENT_LENGTH=env.max_body_bytes,  # bigger bodies get 413
    )
    app.config.update(config or {})
    app.json.sort_keys = False
    wait_for_sqlite_locks(app.config.get("SQLITE_BUSY_SECONDS", env.api_sqlite_busy_seconds))  # locked: a quick 503

    errors.register(app)
    auth.init_app(app, env)  # before the limiter: limits are per caller
    limits.init_app(app, env)
    for module in (handout, jobs, actions, logs, meta, metrics, pages, queues, report, studies, sweeps):
        app.register_blueprint(module.bp)
    return app
