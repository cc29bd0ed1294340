"""`make run`'s script as a newcomer meets it: no Redis reachable, so the embedded broker; a job still runs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

import requests
from support import REPO, service_env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_run_script_falls_back_to_the_embedded_broker(tmp_path, data_root, cache_root):
    port = free_port()
    env = service_env(f"sqlite:///{tmp_path / 'cnnlab.db'}", f"redis://127.0.0.1:{free_port()}/0", tmp_path,
                      data_root, cache_root, CNNLAB_PORT=str(port))
    subprocess.run([str(REPO / ".venv/bin/alembic"), "upgrade", "head"], cwd=REPO, env=env, check=True,
                   capture_output=True)
    log = tmp_path / "run.log"
    proc = subprocess.Popen(["scripts/run.sh"], cwd=REPO, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if requests.get(f"{url}/healthz", timeout=5).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):  # a loaded machine: gunicorn still booting
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.3)
        assert "embedded filesystem broker" in log.read_text()
        job = requests.post(f"{url}/jobs", json={"preset": "mnist-fc", "overrides": {"train_limit": 500,
                                                                                    "test_limit": 200}}).json()
        while (j := requests.get(f"{url}/jobs/{job['id']}").json())["status"] in ("queued", "running"):
            assert time.monotonic() < deadline + 90, j
            time.sleep(0.3)
        assert j["status"] == "succeeded", j
        assert f"/jobs/{job['id']}" not in log.read_text()  # the polling above leaves no access lines in the terminal
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
