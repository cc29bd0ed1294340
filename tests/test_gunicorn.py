"""The API under gunicorn.conf.py, over real HTTP: slow clients (half-sent headers, stalled bodies) do not starve
others, and the server ends them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

import requests
from support import REPO, admin_token, migrate, service_env

SLOW_CLIENTS = 10
HALF_SENT = 64  # the probe's slowloris: more sockets than the API has threads
HALF_HEADERS = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"  # then nothing: the blank line never comes
PARTIAL = ("POST /jobs HTTP/1.1\r\nHost: cnnlab\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\n"
           'Content-Length: 1000\r\n\r\n{{"preset": "mnist-')  # then nothing: the body stalls


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_api(tmp_path, data_root, cache_root, redis_url) -> tuple[subprocess.Popen, str, str]:
    db = f"sqlite:///{tmp_path / 'cnnlab.db'}"
    migrate(db)
    port = free_port()
    env = service_env(db, redis_url, tmp_path, data_root, cache_root, CNNLAB_PORT=str(port),
                      CNNLAB_CLIENT_TIMEOUT_SECONDS="3")
    proc = subprocess.Popen([str(REPO / ".venv/bin/gunicorn"), "-c", "gunicorn.conf.py", "api:create_app()"], cwd=REPO,
                            env=env, stdout=open(tmp_path / "gunicorn.log", "w"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 60
    while True:
        assert proc.poll() is None, (tmp_path / "gunicorn.log").read_text()
        try:
            if requests.get(f"{url}/healthz", timeout=5).status_code == 200:
                return proc, url, admin_token(db)  # a write with a valid token: its body is read
        except requests.RequestException:  # not listening yet, or its workers still import the app
            pass
        assert time.monotonic() < deadline, (tmp_path / "gunicorn.log").read_text()
        time.sleep(0.2)


def test_slow_clients_leave_healthz_answering(tmp_path, data_root, cache_root, redis_url):
    proc, url, token = start_api(tmp_path, data_root, cache_root, redis_url)
    slow = []
    try:
        for _ in range(SLOW_CLIENTS):
            s = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])))
            s.sendall(PARTIAL.format(token=token).encode())
            slow.append(s)
        health = requests.get(f"{url}/healthz", timeout=5)  # its client timeout, as a load balancer would use
        assert health.status_code == 200 and health.json()["status"] == "ok", health.text
        for s in slow:  # each stalled body is answered 400 once the client timeout passes, its thread freed
            s.settimeout(30)
            assert s.recv(4096).startswith(b"HTTP/1.1 400"), "a stalled request was not ended"
    finally:
        for s in slow:
            s.close()
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def test_half_sent_headers_leave_healthz_answering_and_are_closed(tmp_path, data_root, cache_root, redis_url):
    proc, url, _ = start_api(tmp_path, data_root, cache_root, redis_url)
    port, hung = int(url.rsplit(":", 1)[1]), []
    try:
        for _ in range(HALF_SENT):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(HALF_HEADERS)
            hung.append(s)
        time.sleep(1)  # the server has read every half request by now
        for _ in range(3):
            started = time.monotonic()
            health = requests.get(f"{url}/healthz", timeout=2)  # within 2 s while all 64 hang
            assert health.status_code == 200, health.text
            assert time.monotonic() - started < 2
        for s in hung:  # the header deadline (keepalive, 5 s) closes each: EOF, no request served
            s.settimeout(20)
            assert s.recv(4096) == b"", "a half-sent request was answered, not dropped"
    finally:
        for s in hung:
            s.close()
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
