"""docker-compose.yml and the Dockerfile cannot run here (no Docker); check they parse and name real things."""

from __future__ import annotations

import importlib
import re
import shutil
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


def compose(name: str = "docker-compose.yml") -> dict:
    return yaml.safe_load((REPO / name).read_text())


class Unset(KeyError):
    """A ${VAR:?message} whose variable is not set: docker compose refuses to start."""


def interpolate(value, env: dict[str, str]):
    """Compose's variable syntax (${X}, ${X:-default}, ${X:?message}, $$) applied to a value, as `docker compose` does."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(m: re.Match) -> str:
        name, op, arg = m["name"], m["op"], m["arg"] or ""
        if env.get(name):
            return env[name]
        if op == ":?":
            raise Unset(f"{name}: {arg}")
        return arg if op == ":-" else ""

    return re.sub(r"\$\{(?P<name>\w+)(?:(?P<op>:-|:\?)(?P<arg>[^}]*))?\}", one, value).replace("$$", "$")


def merged(*names: str, env: dict[str, str]) -> dict:
    """docker compose -f A -f B: services merged key by key (maps merged, lists and scalars replaced)."""
    services: dict = {}
    for name in names:
        for service, body in compose(name)["services"].items():
            into = services.setdefault(service, {})
            for key, value in body.items():
                into[key] = {**into.get(key, {}), **value} if isinstance(value, dict) else value
    return interpolate(services, env)


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
        assert env["CNNLAB_REDIS_URL"].endswith("@redis:6379/0")
        assert env["CNNLAB_ARTIFACT_STORE"].startswith("s3://") and env["AWS_ENDPOINT_URL"] == "http://minio:9000"
        mounted = {v.split(":")[1] for v in services[name]["volumes"]}
        assert {env["CNNLAB_DATA_DIR"], env["CNNLAB_VAR_DIR"]} <= mounted
    named = {v.split(":")[0] for s in services.values() for v in s.get("volumes", []) if not v.startswith(("./", "/"))}
    assert named <= set(doc["volumes"])
    published = [p for s in services.values() for p in s.get("ports", [])]
    assert published and all(p.startswith("127.0.0.1:") for p in published)  # nothing on other interfaces


def test_the_store_and_the_servers_share_their_passwords():
    """Redis, PostgreSQL and MinIO each need a password, and every client is given the server's (defaults or not)."""
    from sqlalchemy.engine import make_url

    for env in ({}, {"CNNLAB_REDIS_PASSWORD": "r3d", "CNNLAB_DB_PASSWORD": "pg-pw", "CNNLAB_S3_KEY": "lab",
                     "CNNLAB_S3_SECRET": "s3-secret"}):
        services = merged("docker-compose.yml", env=env)
        redis_pw = services["redis"]["command"][services["redis"]["command"].index("--requirepass") + 1]
        pg_pw, minio = services["postgres"]["environment"]["POSTGRES_PASSWORD"], services["minio"]["environment"]
        assert redis_pw and pg_pw and minio["MINIO_ROOT_PASSWORD"] and services["minio"]["healthcheck"]["test"]
        for name in ("api", "worker", "worker-cpu", "migrate"):
            app = services[name]["environment"]
            assert app["CNNLAB_REDIS_URL"] == f"redis://:{redis_pw}@redis:6379/0"
            assert make_url(app["CNNLAB_DATABASE_URL"]).password == pg_pw
            assert (app["AWS_ACCESS_KEY_ID"], app["AWS_SECRET_ACCESS_KEY"]) == (minio["MINIO_ROOT_USER"],
                                                                              minio["MINIO_ROOT_PASSWORD"])
        bucket = services["api"]["environment"]["CNNLAB_ARTIFACT_STORE"].split("/")[2]
        assert services["minio-bucket"]["entrypoint"][-1].endswith(f"store/{bucket}")
        for name in ("api", "worker"):
            assert services[name]["depends_on"]["minio-bucket"]["condition"] == "service_completed_successfully"


def test_the_fleet_profile_publishes_the_servers_only_with_passwords_set():
    with pytest.raises(Unset):  # no default password once published
        merged("docker-compose.yml", "docker-compose.fleet.yml", env={})
    env = {"CNNLAB_REDIS_PASSWORD": "r", "CNNLAB_DB_PASSWORD": "p", "CNNLAB_S3_KEY": "k", "CNNLAB_S3_SECRET": "s"}
    for missing in env:
        with pytest.raises(Unset):
            merged("docker-compose.yml", "docker-compose.fleet.yml", env={k: v for k, v in env.items() if k != missing})
    services = merged("docker-compose.yml", "docker-compose.fleet.yml", env=env)
    ports = {name: services[name]["ports"] for name in ("redis", "postgres", "minio")}
    assert ports == {"redis": ["0.0.0.0:6379:6379"], "postgres": ["0.0.0.0:5432:5432"], "minio": ["0.0.0.0:9000:9000"]}
    assert "ports" not in services["api"] and services["proxy"]["ports"] == ["127.0.0.1:5000:80"]  # nginx in front
    assert "--requirepass" in services["redis"]["command"] and services["redis"]["command"][-1] == "r"
    default = merged("docker-compose.yml", env={})
    assert not any(default[name].get("ports") for name in ("redis", "postgres", "minio"))  # published only here


def test_a_remote_worker_reaches_the_main_host_with_passwords_and_keeps_its_own_scratch_disk():
    with pytest.raises(Unset):
        merged("docker-compose.remote-worker.yml", env={})
    env = {"CNNLAB_FLEET_HOST": "10.0.0.5", "CNNLAB_REDIS_PASSWORD": "r", "CNNLAB_DB_PASSWORD": "p",
           "CNNLAB_S3_KEY": "k", "CNNLAB_S3_SECRET": "s"}
    services = merged("docker-compose.remote-worker.yml", env=env)
    assert set(services) == {"worker", "worker-cpu"}
    for service in services.values():
        app = service["environment"]
        assert app["CNNLAB_REDIS_URL"] == "redis://:r@10.0.0.5:6379/0"
        assert app["CNNLAB_DATABASE_URL"] == "postgresql+psycopg://cnnlab:p@10.0.0.5:5432/cnnlab"
        assert app["AWS_ENDPOINT_URL"] == "http://10.0.0.5:9000" and app["CNNLAB_ARTIFACT_STORE"].startswith("s3://")
        assert app["CNNLAB_CHECKPOINT_DIR"].startswith(app["CNNLAB_VAR_DIR"]) and not service.get("ports")
    main = merged("docker-compose.yml", env={})
    assert services["worker"]["environment"]["CNNLAB_ARTIFACT_STORE"] == main["worker"]["environment"][
        "CNNLAB_ARTIFACT_STORE"]


def test_compose_commands_are_real():
    services = {**compose()["services"], **{f"remote {k}": v for k, v in
                                            compose("docker-compose.remote-worker.yml")["services"].items()}}
    for name, service in services.items():
        cmd = service.get("command")
        if not cmd or service.get("image", "").startswith(("redis", "postgres", "minio")) and "build" not in service:
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
    assert cfg["worker_class"] == "gevent" and cfg["worker_connections"] >= 1000 and cfg["graceful_timeout"] <= 10
    assert 0 < cfg["keepalive"] <= 10  # the deadline for a request's headers (tests/test_gunicorn.py)
