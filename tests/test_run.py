"""`make run`'s script as a newcomer meets it: no Redis reachable, so the embedded broker; the first start prints an
admin token and a curl line that submits a job; a job still runs."""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import stat
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
            except requests.RequestException:  # not listening yet, or its workers still import the app
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.3)
        text = log.read_text()
        assert "embedded filesystem broker" in text
        token = (tmp_path / "admin-token").read_text().strip()
        assert stat.S_IMODE((tmp_path / "admin-token").stat().st_mode) == 0o600
        assert f"admin API token created: {token}" in text
        curl = shlex.split(re.search(r"submit a job: (curl .*)", text).group(1))
        assert curl[curl.index("-H") + 1] == f"Authorization: Bearer {token}"
        body = {"preset": "mnist-fc", "overrides": {"train_limit": 500, "test_limit": 200}}
        assert requests.post(f"{url}/jobs", json=body).status_code == 401  # writes need the token
        job = requests.post(f"{url}/jobs", json=body, headers={"Authorization": f"Bearer {token}"}).json()
        while (j := requests.get(f"{url}/jobs/{job['id']}").json())["status"] in ("queued", "running"):
            assert time.monotonic() < deadline + 90, j
            time.sleep(0.3)
        assert j["status"] == "succeeded", j
        assert f"GET /jobs/{job['id']}" not in log.read_text()  # the polling above leaves no access lines in the terminal
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
