"""docker-compose.yml and the Dockerfile cannot run here (no Docker); check they parse and name real things."""

from __future__ import annotations

import importlib
import re
import shutil
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_compose_has_the_services_volumes_and_health_checks():
    doc = compose()
    services = doc["services"]
    assert {"redis", "postgres", "migrate", "api", "worker"} <= set(services)
    for name in ("redis", "postgres", "api"):
        assert services[name]["healthcheck"]["test"], name
    gpu = services["worker"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["driver"] == "nvidia" and "gpu" in gpu["capabilities"]
    assert services["api"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    for name in ("api", "worker", "migrate"):
        env = services[name]["environment"]
        assert env["CNNLAB_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert env["CNNLAB_REDIS_URL"] == "redis://redis:6379/0"
        mounted = {v.split(":")[1] for v in services[name]["volumes"]}
        assert {env["CNNLAB_DATA_DIR"], env["CNNLAB_VAR_DIR"]} <= mounted
    named = {v.split(":")[0] for s in services.values() for v in s.get("volumes", [])}
    assert named <= set(doc["volumes"])
    published = [p for s in services.values() for p in s.get("ports", [])]
    assert published and all(p.startswith("127.0.0.1:") for p in published)  # nothing on other interfaces


def test_compose_commands_are_real():
    for name, service in compose()["services"].items():
        cmd = service.get("command")
        if not cmd or service.get("image", "").startswith(("redis", "postgres")) and "build" not in service:
            continue
        if cmd[0] == "python":
            assert cmd[1] == "-m" and importlib.util.find_spec(cmd[2]), name
        else:
            assert shutil.which(cmd[0], path=str(REPO / ".venv" / "bin")) or shutil.which(cmd[0]), (name, cmd[0])
        for arg in cmd:  # gunicorn's app factory must import and build
            if m := re.fullmatch(r"(\w+):(\w+)\(\)", arg):
                app = getattr(importlib.import_module(m[1]), m[2])()
                assert app.url_map is not None


def test_dockerfile_copies_what_exists():
    for line in (REPO / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            for src in line.split()[1:-1]:
                assert (REPO / src).exists(), src
