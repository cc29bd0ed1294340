"""`cnnlab tokens`: create prints the token alone on stdout and it works against the API; list never shows it;
revoke ends it; first-admin makes one only once, in a 0600 file."""

from __future__ import annotations

import re
import stat
import uuid

from support import bearer

from api import create_app
from shared.cli.main import main


def test_create_list_revoke(db_url, data_root, monkeypatch, capsys):
    monkeypatch.setenv("CNNLAB_DATABASE_URL", db_url)
    name = f"cli-{uuid.uuid4().hex[:8]}"
    assert main(["tokens", "create", name]) == 0
    out = capsys.readouterr().out
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}\n", out), out  # the token alone: `TOKEN=$(cnnlab tokens create x)`
    token = out.strip()
    client = create_app({"DATABASE_URL": db_url, "DATA_DIR": data_root, "BROKER_URL": "redis://127.0.0.1:1/0"}).test_client()
    assert client.post("/jobs", json={"preset": "nope"}, headers=bearer(token)).status_code == 422  # past the guard
    assert main(["tokens", "create", name]) == 2 and "exists already" in capsys.readouterr().err
    assert main(["tokens", "create", "bad name!"]) == 2
    assert main(["tokens", "list"]) == 0
    listed = capsys.readouterr().out
    assert re.search(rf"^{name}\s+-\s+\S+ \S+\s+\S+ \S+\s+active$", listed, re.M) and token not in listed
    assert main(["tokens", "revoke", name]) == 0
    assert client.post("/jobs", json={"preset": "nope"}, headers=bearer(token)).status_code == 401
    assert main(["tokens", "revoke", "nobody-" + name]) == 2


def test_first_admin_only_once_and_saved_for_its_owner_alone(tmp_path, monkeypatch, capsys):
    from support import migrate

    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    migrate(url)
    monkeypatch.setenv("CNNLAB_DATABASE_URL", url)
    saved = tmp_path / "var" / "admin-token"
    assert main(["tokens", "first-admin", "--save", str(saved)]) == 0
    token = capsys.readouterr().out.strip()
    assert saved.read_text().strip() == token and stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert main(["tokens", "first-admin"]) == 0 and capsys.readouterr().out == ""  # an admin exists: nothing new
