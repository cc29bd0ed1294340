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
    named = {v.split(":")[0] for s in services.values() for v in s.get("volumes", []) if not v.startswith(("./", "/"))}
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


def test_the_api_is_reached_through_a_proxy_that_buffers_slow_clients():
    services = compose()["services"]
    assert "ports" not in services["api"] and services["api"]["expose"] == ["5000"]
    proxy = services["proxy"]
    assert proxy["image"].startswith("nginx:") and proxy["ports"] == ["127.0.0.1:5000:80"]
    source, target = proxy["volumes"][0].split(":")[:2]
    conf = (REPO / source).read_text()
    assert target == "/etc/nginx/conf.d/default.conf"
    assert "server api:5000;" in conf and "proxy_pass http://cnnlab_api;" in conf
    for directive in ("client_body_timeout", "client_header_timeout", "proxy_request_buffering on",
                      "client_max_body_size 64k"):
        assert directive in conf, directive
    assert proxy["depends_on"]["api"]["condition"] == "service_healthy"


def test_gunicorn_runs_from_its_config_everywhere():
    api = compose()["services"]["api"]["command"]
    assert api[:3] == ["gunicorn", "-c", "gunicorn.conf.py"]
    assert "COPY alembic.ini gunicorn.conf.py ./" in (REPO / "Dockerfile").read_text()
    assert "-c gunicorn.conf.py" in (REPO / "scripts" / "run.sh").read_text()
    cfg = {}
    exec(compile((REPO / "gunicorn.conf.py").read_text(), "gunicorn.conf.py", "exec"), cfg)  # noqa: S102
    assert cfg["worker_class"] == "gthread" and cfg["threads"] >= 16 and cfg["graceful_timeout"] <= 10
