"""The layer rules that import-linter cannot state: what loads without torch, and where settings are read."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from support import REPO


@pytest.mark.parametrize("module", ["shared.store.jobs", "shared.store.publish", "shared.specs", "shared.settings",
                                    "api", "worker.supervisor"])
def test_the_store_api_and_supervisor_load_without_torch(module):
    """The API and the Celery process stay light: torch is imported only where a model is built or trained."""
    code = f"import sys, {module}; from api import create_app; create_app(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_cnnlab_settings_are_read_in_one_place():
    """Every CNNLAB_* variable is a field of shared.settings.Settings, read nowhere else."""
    reads = re.compile(r"(environ\.get\(|environ\[|getenv\()\s*[\"']CNNLAB_\w+[\"'](?!\]\s*=[^=])")  # not writes
    offenders = [f"{p.relative_to(REPO)}:{i}" for root in ("shared", "api", "worker")
                 for p in (REPO / root).rglob("*.py") if p.name != "settings.py"
                 for i, line in enumerate(p.read_text().splitlines(), 1) if reads.search(line)]
    assert offenders == []


def test_every_setting_is_in_the_readme_table():
    from shared.settings import Settings

    readme = (REPO / "README.md").read_text()
    missing = [f"CNNLAB_{name.upper()}" for name in Settings.model_fields if f"`CNNLAB_{name.upper()}`" not in readme]
    assert missing == []
