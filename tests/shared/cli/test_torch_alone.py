"""`cnnlab train` and `cnnlab sweep` run with torch alone: in a Python where `import sqlalchemy` fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

# A Python without the service's packages: a finder ahead of all others refuses sqlalchemy, then the CLI runs.
WITHOUT_SQLALCHEMY = """
import runpy, sys

class NoSqlalchemy:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "sqlalchemy":
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)
        return None

sys.meta_path.insert(0, NoSqlalchemy())
sys.modules.pop("sqlalchemy", None)
if sys.argv[1:2] == ["--python"]:
    exec(sys.argv[2])
else:
    runpy.run_module("shared.cli", run_name="__main__", alter_sys=True)
"""


def without_sqlalchemy(*args, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", WITHOUT_SQLALCHEMY, *map(str, args)], cwd=REPO,
                          env=os.environ.copy(), capture_output=True, text=True, timeout=timeout)


def test_the_python_has_no_sqlalchemy():
    proc = without_sqlalchemy("--python", "import sqlalchemy")
    assert proc.returncode != 0
    assert "No module named 'sqlalchemy' (blocked by the test)" in proc.stderr


def test_train_runs_with_torch_alone(data_dir, tmp_path):
    proc = without_sqlalchemy("train", "mnist-fc", "--set", "train_limit=500", "--set", "test_limit=200",
                              "--data-dir", data_dir, "--out", tmp_path / "run")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["preset"] == "mnist-fc" and result["spec"]["train_limit"] == 500
    assert 0 < result["test_accuracy"] <= 1
    assert Path(result["checkpoint"]).is_file()


def test_sweep_runs_with_torch_alone(data_dir, tmp_path):
    """The sweep's submit-time checks (shapes on the meta device, the queue's limits) come from shared.train."""
    proc = without_sqlalchemy("sweep", "mnist-fc", "--grid", "model_args.n_hidden=4,8", "--seeds", "1",
                              "--set", "train_limit=500", "--set", "test_limit=200",
                              "--data-dir", data_dir, "--out", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip())
    assert [cell["n"] for cell in out["cells"]] == [1, 1]
    assert all(0 < cell["test_accuracy"]["mean"] <= 1 for cell in out["cells"])


def test_a_sweep_the_model_cannot_run_is_refused_with_torch_alone(data_dir, tmp_path):
    proc = without_sqlalchemy("sweep", "mnist-fc", "--grid", "model_args.n_hidden=0,8",
                              "--data-dir", data_dir, "--out", tmp_path / "out")
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("cnnlab: error: ") and "Traceback" not in proc.stderr
    assert "a layer would have no weights" in proc.stderr
