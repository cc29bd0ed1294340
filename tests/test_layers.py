"""The layer rules that import-linter cannot state: what loads without torch, and where settings are read."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from support import REPO


@pytest.mark.parametrize("module", ["shared.store.jobs", "shared.store.publish", "shared.lab.specs", "shared.lab.settings",
                                    "api", "worker.supervisor"])
def test_the_store_api_and_supervisor_load_without_torch(module):
    """The API and the Celery process stay light: torch is imported only where a model is built or trained."""
    code = f"import sys, {module}; from api import create_app; create_app(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_cnnlab_settings_are_read_in_one_place():
    """Every CNNLAB_* variable is a field of shared.lab.settings.Settings, read nowhere else."""
    reads = re.compile(r"(environ\.get\(|environ\[|getenv\()\s*[\"']CNNLAB_\w+[\"'](?!\]\s*=[^=])")  # not writes
    offenders = [f"{p.relative_to(REPO)}:{i}" for root in ("shared", "api", "worker")
                 for p in (REPO / root).rglob("*.py") if p.name != "settings.py"
                 for i, line in enumerate(p.read_text().splitlines(), 1) if reads.search(line)]
    assert offenders == []


def test_every_setting_is_in_the_readme_table():
    from shared.lab.settings import Settings

    readme = (REPO / "README.md").read_text()
    missing = [f"CNNLAB_{name.upper()}" for name in Settings.model_fields if f"`CNNLAB_{name.upper()}`" not in readme]
    assert missing == []


def test_a_worker_claims_a_job_without_importing_torch(data_root, tmp_path):
    """The Celery pool process claims and hands over jobs; only its trainer imports torch (2 s of CPU and 265 MB
    that every new worker would pay again: measured on a fleet replacing a killed worker every few seconds)."""
    from support import migrate

    from shared.store.db import session_scope
    from shared.store.jobs import create_job

    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    migrate(url)
    with session_scope(url) as s:
        job, _ = create_job(s, preset="mnist-cnn", data_root=data_root)
        s.flush()
        job_id = job.id
    code = ("import sys; from shared.store.db import retry; from worker import supervisor; "
            f"spec, _, attempt = retry(lambda s: supervisor._claim(s, {job_id}, 'w@host:1')); "
            "print(spec.model, attempt, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "CNNLAB_DATABASE_URL": url})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["cnn", "1", "False"]
