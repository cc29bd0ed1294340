"""`cnnlab sweep` as a user runs it: a subprocess, the cells table on stderr, one JSON line on stdout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared.cli.sweep import parse_grid
from shared.lab.specs import SpecError

REPO = Path(__file__).resolve().parents[3]


def cnnlab(*args, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "shared.cli", *map(str, args)], cwd=REPO, env=os.environ.copy(),
                          capture_output=True, text=True, timeout=timeout)


def test_parse_grid():
    assert parse_grid(["model_args.n_hidden=4,8", "optimizer=sgd,adam", "augment=true"]) == {
        "model_args.n_hidden": [4, 8], "optimizer": ["sgd", "adam"], "augment": [True]}
    assert parse_grid(["mean=[[0.5],[0.1307]]"]) == {"mean": [[0.5], [0.1307]]}
    for bad in (["lr"], ["lr="], ["lr=1", "lr=2"]):
        with pytest.raises(SpecError):
            parse_grid(bad)


def test_sweep_runs_every_cell_and_seed(data_dir, tmp_path):
    proc = cnnlab("sweep", "mnist-fc", "--grid", "model_args.n_hidden=4,8", "--seeds", "0-1",
                  "--set", "train_limit=500", "--set", "test_limit=200", "--set", "lr=0.05",
                  "--data-dir", data_dir, "--out", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "4/4" in proc.stderr  # the progress bar reached the end
    assert "model_args.n_hidden=8 vs model_args.n_hidden=4: " in proc.stderr
    out = json.loads(proc.stdout.strip())
    assert out["seeds"] == [0, 1] and [c["values"] for c in out["cells"]] == [
        {"model_args.n_hidden": 4}, {"model_args.n_hidden": 8}]
    for cell in out["cells"]:
        acc = cell["test_accuracy"]
        assert cell["n"] == 2 and acc["ci95"][0] <= acc["mean"] <= acc["ci95"][1]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "cell0-seed0", "cell0-seed1", "cell1-seed0", "cell1-seed1"]


@pytest.mark.parametrize("args, needle", [
    (["--grid", "model_args.n_hidden=4,0"], "cell 1 (model_args.n_hidden=0)"),
    (["--grid", "seed=1,2"], "seeds"),
    (["--grid", "lr=0.1", "--seeds", "x"], "seeds"),
    (["--grid", "lr=" + ",".join(str(0.001 * i) for i in range(1, 400)), "--seeds", "3"], "at most 1,000"),
])
def test_bad_sweeps_are_one_line_errors_before_any_training(data_dir, tmp_path, args, needle):
    proc = cnnlab("sweep", "mnist-fc", *args, "--data-dir", data_dir, "--out", tmp_path / "out")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("cnnlab: error: "), proc.stderr
    assert needle in lines[0] and proc.stdout == "" and not (tmp_path / "out").exists()
