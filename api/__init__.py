"""cnnlab's HTTP API and results pages: `create_app(config=None)`."""

from __future__ import annotations

import os

from flask import Flask

from shared import config as settings


def create_app(config: dict | None = None) -> Flask:
    """Build the app; settings come from the environment unless `config` overrides them."""
    app = Flask(__name__)
    app.config.update(
        DATABASE_URL=settings.database_url(),
        BROKER_URL=settings.broker_url(),
        DATA_DIR=settings.data_dir(),
        MAX_CONTENT_LENGTH=int(os.environ.get("CNNLAB_MAX_BODY_BYTES", 64 * 1024)),  # bigger bodies get 413
        JSON_SORT_KEYS=False,
    )
    app.config.update(config or {})
    app.json.sort_keys = False

    from api import errors, jobs, meta, pages

    errors.register(app)
    for module in (jobs, meta, pages):
        app.register_blueprint(module.bp)
    return app
