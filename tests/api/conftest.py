"""The API in-process (Flask's test client) on a migrated database, with enqueueing recorded instead of sent.

`client` sends an admin token with every request (`client.token`); `anon` is the same app without one."""

from __future__ import annotations

import pytest
from support import admin_token, token_client

from api import create_app
from shared.store import publish


@pytest.fixture
def sent(monkeypatch):
    """Every enqueue call's arguments; nothing reaches a broker."""
    calls = []
    monkeypatch.setattr(publish, "enqueue", lambda *a, **k: calls.append(a))
    return calls


@pytest.fixture
def artifact_store(tmp_path, monkeypatch) -> str:
    """An artifact store of the test's own (a directory), as CNNLAB_ARTIFACT_STORE."""
    url = (tmp_path / "artifacts").as_uri()
    monkeypatch.setenv("CNNLAB_ARTIFACT_STORE", url)
    return url


@pytest.fixture
def app(db_url, data_root, sent, artifact_store):
    return create_app({"DATABASE_URL": db_url, "DATA_DIR": data_root, "BROKER_URL": "redis://127.0.0.1:1/0"})


@pytest.fixture
def client(app, db_url):
    return token_client(app, admin_token(db_url))


@pytest.fixture
def anon(app):
    return app.test_client()
