"""The `cnnlab` command as a user runs it: a subprocess, one JSON line on stdout, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support import admin_token, token_client

from shared.lab.specs import PRESETS

REPO = Path(__file__).resolve().parents[3]


def cnnlab(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "shared.cli", *map(str, args)], cwd=REPO, env=os.environ.copy(),
                          capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str):
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("cnnlab: error: ")
    for needle in needles:
        assert needle in lines[0]
    assert proc.stdout == ""


def test_train_prints_one_json_result(data_dir, tmp_path):
    out = tmp_path / "run"
    proc = cnnlab("train", "mnist-fc", "--set", "train_limit=1000", "--set", "test_limit=200",
                  "--data-dir", data_dir, "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["preset"] == "mnist-fc"
    assert result["spec"]["model"] == "fc2" and result["spec"]["train_limit"] == 1000
    assert result["spec"]["test_limit"] == 200 and result["spec"]["lr"] == 0.01
    assert result["params"] == 6442
    assert 0 < result["test_accuracy"] <= 1
    assert result["test_loss"] > 0
    assert result["epochs"] == 1
    assert result["train_seconds"] > 0 and result["samples_per_second"] > 0
    assert result["data"]["name"] == "mnist"
    assert "IDX" in result["data"]["source"]
    assert result["data"]["fingerprint"].startswith("sha256:")
    assert result["data"]["train_samples"] == 1000 and result["data"]["test_samples"] == 200
    ckpt = Path(result["checkpoint"])
    assert ckpt.is_file() and ckpt.parent == out and ckpt.name == "epoch-001.pt"
    assert ckpt.with_name("epoch-001.pt.sha256").is_file()
    assert result["environment"]["device"].startswith(("cpu", "cuda"))
    # stdout holds only the result; progress and the epoch summary go to stderr
    assert len(proc.stdout.strip().splitlines()) == 1
    assert "epoch 1:" in proc.stderr


def test_resume_from_the_cli(data_dir, tmp_path):
    args = ["--set", "train_limit=512", "--set", "test_limit=100", "--data-dir", data_dir, "--out", tmp_path]
    first = cnnlab("train", "mnist-fc", *args)
    assert first.returncode == 0, first.stderr
    proc = cnnlab("train", "mnist-fc", *args, "--set", "epochs=2", "--resume", tmp_path / "epoch-001.pt")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["epochs"] == 2 and result["checkpoint"].endswith("epoch-002.pt")


def test_default_out_is_under_var_dir(data_dir, isolated_var):
    proc = cnnlab("train", "mnist-fc", "--set", "train_limit=256", "--set", "test_limit=100", "--data-dir", data_dir)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert Path(result["checkpoint"]) == isolated_var / "runs" / "mnist-fc" / "epoch-001.pt"


def test_presets_lists_them_all():
    proc = cnnlab("presets")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.strip().splitlines()]
    assert [r["preset"] for r in rows] == list(PRESETS)
    assert len(rows) == 8
    by_name = {r["preset"]: r["spec"] for r in rows}
    assert by_name["cifar10-vgg"]["batch_size"] == 128 and by_name["mnist-cnn"]["model_args"] == {"n_feature": 6}


def test_unknown_preset_is_a_one_line_error(data_dir):
    assert_one_line_error(cnnlab("train", "mnist-resnet", "--data-dir", data_dir), "mnist-resnet", "mnist-cnn")


@pytest.mark.parametrize("override, field", [("epochs=0", "epochs"), ("optimizer=rmsprop", "optimizer"),
                                             ("nonsense=1", "nonsense"), ("epochs", "epochs")])
def test_bad_override_is_a_one_line_error(data_dir, override, field):
    assert_one_line_error(cnnlab("train", "mnist-fc", "--set", override, "--data-dir", data_dir), field)


def test_missing_data_dir_is_a_one_line_error(tmp_path):
    missing = tmp_path / "no-data"
    assert_one_line_error(cnnlab("train", "mnist-fc", "--data-dir", missing), "MNIST", str(missing))


def test_missing_checkpoint_is_a_one_line_error(data_dir, tmp_path):
    assert_one_line_error(cnnlab("train", "mnist-fc", "--data-dir", data_dir, "--resume", tmp_path / "nope.pt"),
                          "does not exist")


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_on_a_cpu_machine_is_a_one_line_error(data_dir):
    assert_one_line_error(cnnlab("train", "mnist-fc", "--set", "device=cuda", "--data-dir", data_dir), "CUDA")


def test_train_seeds_prints_one_entry_per_seed(data_dir, tmp_path):
    proc = cnnlab("train", "mnist-fc", "--seeds", "0-2,5", "--set", "train_limit=1000",
                  "--set", "test_limit=200", "--data-dir", data_dir, "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    result = json.loads(proc.stdout)
    assert result["strategy"] == "vmap" and result["train_seconds"] > 0 and "seed" not in result["spec"]
    assert [r["seed"] for r in result["runs"]] == [0, 1, 2, 5]
    for run in result["runs"]:
        assert 0 < run["test_accuracy"] <= 1 and run["test_loss"] > 0
        ckpt = Path(run["checkpoint"])
        assert ckpt == tmp_path / f"seed-{run['seed']}" / "epoch-001.pt" and ckpt.is_file()
    assert len({r["test_loss"] for r in result["runs"]}) == 4  # four different seeds, four different runs
    assert "seed 5 epoch 1:" in proc.stderr  # progress and each seed's epoch on stderr


def test_a_seed_of_the_pack_matches_the_seed_alone(data_dir, tmp_path):
    common = ["--set", "train_limit=1000", "--set", "test_limit=200", "--data-dir", data_dir]
    pack = json.loads(cnnlab("train", "mnist-fc", "--seeds", "3,4", "--strategy", "vmap", *common,
                             "--out", tmp_path / "p").stdout)
    solo = json.loads(cnnlab("train", "mnist-fc", "--set", "seed=4", *common, "--out", tmp_path / "s").stdout)
    assert abs(pack["runs"][1]["test_accuracy"] - solo["test_accuracy"]) <= 0.003
    assert abs(pack["runs"][1]["test_loss"] - solo["test_loss"]) <= 1e-4 * solo["test_loss"]


@pytest.mark.parametrize("seeds, needle", [("0-x", "'0-x'"), ("3-1", "'3-1'"), ("1,1", "repeated"), ("", "''")])
def test_bad_seeds_are_a_one_line_error(data_dir, seeds, needle):
    assert_one_line_error(cnnlab("train", "mnist-fc", "--seeds", seeds, "--data-dir", data_dir), "--seeds", needle)


def test_conv_seeds_on_the_cpu_train_one_after_another_by_default(data_dir, tmp_path):
    proc = cnnlab("train", "mnist-cnn", "--seeds", "0-1", "--set", "train_limit=500", "--set", "test_limit=100",
                  "--set", "device=cpu", "--data-dir", data_dir, "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["strategy"] == "sequential" and [r["seed"] for r in result["runs"]] == [0, 1]
    assert Path(result["runs"][1]["checkpoint"]) == tmp_path / "seed-1" / "epoch-001.pt"


def test_seeds_with_missing_data_is_a_one_line_error(tmp_path):
    assert_one_line_error(cnnlab("train", "mnist-fc", "--seeds", "0-1", "--data-dir", tmp_path), "MNIST")


def test_the_cli_and_the_api_share_the_submit_rules(data_dir, tmp_path, sqlite_url):
    """The MNIST preset on CIFAR-10 images: both take the dataset's own normalization and say so (one rule set)."""
    from api import create_app

    proc = cnnlab("train", "mnist-fc", "--set", "dataset=cifar10-jpeg", "--set", "train_limit=200", "--set",
                  "test_limit=100", "--data-dir", data_dir, "--out", tmp_path / "run")
    assert proc.returncode == 0, proc.stderr
    warning = next(line for line in proc.stderr.splitlines() if line.startswith("cnnlab: warning: mean: "))
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["spec"]["mean"] is None and len(result["data"]["mean"]) == 3  # three channels, computed
    app = create_app({"DATABASE_URL": sqlite_url, "DATA_DIR": data_dir, "BROKER_URL": "redis://127.0.0.1:1/0"})
    client = token_client(app, admin_token(sqlite_url))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("shared.store.publish.enqueue", lambda *a, **k: None)
        r = client.post("/jobs", json={"preset": "mnist-fc", "overrides": {"dataset": "cifar10-jpeg"}})
    assert r.status_code == 201, r.json
    assert client.post(f"/jobs/{r.json['id']}/cancel").status_code == 202  # leave nothing queued
    assert r.json["spec"] == {**result["spec"], "train_limit": None, "test_limit": None}
    assert warning == f"cnnlab: warning: mean: {r.json['warnings'][0]['message']}"


def test_every_seeds_option_says_the_one_grammar():
    from shared.lab.seeds import HELP

    for command in ("train", "sweep"):
        proc = cnnlab(command, "--help")
        assert HELP in " ".join(proc.stdout.split()), command


def test_more_cuda_ranks_than_gpus_is_one_error_naming_both_before_launching(data_dir, tmp_path):
    import torch

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    ranks = max(2, gpus + 1)
    proc = cnnlab("train", "mnist-fc", "--set", f"world_size={ranks}", "--set", "device=cuda",
                  "--data-dir", data_dir, "--out", tmp_path / "run")
    assert_one_line_error(proc, f"world_size {ranks} needs {ranks} GPUs", f"this machine has {gpus}")
    assert proc.returncode == 2 and not (tmp_path / "run").exists()  # nothing launched, nothing written
