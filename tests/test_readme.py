"""Docs that run: every shell block of README.md that talks to the service runs, as written, against a live stack
(PostgreSQL, Redis, a real worker, the API over HTTP): only the address is the test's, and `var/admin-token` holds
an admin token as under `make run`. Each curl answer must be below 400 (`--fail-with-body`), so a README line that
forgets the token header (a 401) or names a job that is not there fails here."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from urllib.parse import urlsplit

import pytest
from support import REPO

BLOCK = re.compile(r"```bash\n(.*?)```", re.S)
SERVICE = re.compile(r"(localhost|127\.0\.0\.1):5000|cnnlab tokens")
COMMENT = re.compile(r"(^|\s)#.*$", re.M)  # a shell comment: '#' at a line's start or after a blank
PREAMBLE = """set -euo pipefail
curl() { command curl --fail-with-body --max-time 300 "$@"; }  # any answer >= 400 fails the block
"""


def service_blocks() -> list[str]:
    """The README's bash blocks whose commands (comments aside) name the service's address or `cnnlab tokens`."""
    blocks = BLOCK.findall((REPO / "README.md").read_text(encoding="utf-8"))
    return [b for b in blocks if SERVICE.search(COMMENT.sub("", b))]


def test_the_readme_has_the_blocks_this_test_runs():
    blocks = service_blocks()
    assert len(blocks) == 4, blocks  # sweeps and studies, the service, tokens, the command line
    assert all("localhost:5000/jobs" not in b or '"$AUTH"' in b for b in blocks)


@pytest.fixture
def workdir(service, tmp_path):
    """A folder like the repository's root after `make run`: var/admin-token, .venv; the test's jobs cancelled after."""
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "admin-token").write_text(service.token + "\n")
    (tmp_path / ".venv").symlink_to(REPO / ".venv")
    before = max([j["id"] for j in service.get("/jobs?limit=1").json()["items"]] or [0])
    yield tmp_path
    for status in ("queued", "running"):  # the README queues 40-odd jobs: none is left for the next test
        for job in service.get(f"/jobs?status={status}&limit=200").json()["items"]:
            if job["id"] > before:
                service.post(f"/jobs/{job['id']}/cancel")


@pytest.mark.parametrize("index", range(4))
def test_a_readme_block_runs_against_a_live_stack(service, workdir, index):
    block = service_blocks()[index]
    address = urlsplit(service.url).netloc
    script = PREAMBLE + re.sub(r"(localhost|127\.0\.0\.1):5000", address, block)
    env = service.env | {"PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}", "PYTHONPATH": str(REPO),
                         "CNNLAB_SERVER": service.url}
    done = subprocess.run(["bash", "-c", script], cwd=workdir, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"block {index} failed ({done.returncode}):\n{block}\n--- stdout\n" \
                                 f"{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
