"""Checkpoints: atomic, verified on load; resuming gives the same weights as training straight through."""

from __future__ import annotations

import pytest
import torch
from torchvision.io import write_png

from shared.lab.specs import resolve
from shared.train import checkpoint
from shared.train.checkpoint import CheckpointError
from shared.train.engine import fit

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding:DeprecationWarning")

METRICS = ("epoch", "train_loss", "test_loss", "test_accuracy")


def sample_state() -> dict:
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    return {"epoch": 2, "model": model.state_dict(), "history": [{"epoch": 1, "loss": 0.5}], "spec": {"model": "x"}}


def test_round_trip(tmp_path):
    state = sample_state()
    path = checkpoint.path_for(tmp_path / "run", 2)
    assert path.name == "epoch-002.pt"
    digest = checkpoint.save(state, path)
    assert len(digest) == 64 and digest == checkpoint.sha256_file(path)
    sidecar = path.with_name("epoch-002.pt.sha256")
    assert sidecar.read_text() == f"{digest}  epoch-002.pt\n"  # sha256sum's format
    loaded = checkpoint.load(path)
    assert loaded["format"] == checkpoint.FORMAT
    assert loaded["epoch"] == 2 and loaded["history"] == state["history"] and loaded["spec"] == state["spec"]
    for k, v in state["model"].items():
        assert torch.equal(loaded["model"][k], v)
    assert checkpoint.load(path, digest)["epoch"] == 2
    assert not list(path.parent.glob("*.tmp"))  # no temp files left behind


def test_flipped_byte_is_corrupt(tmp_path):
    path = tmp_path / "c.pt"
    checkpoint.save(sample_state(), path)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="corrupt"):
        checkpoint.load(path)


def test_wrong_expected_sha_is_corrupt(tmp_path):
    path = tmp_path / "c.pt"
    checkpoint.save(sample_state(), path)
    with pytest.raises(CheckpointError, match="corrupt"):
        checkpoint.load(path, "0" * 64)


def test_missing_sidecar_and_missing_file(tmp_path):
    path = tmp_path / "c.pt"
    digest = checkpoint.save(sample_state(), path)
    path.with_name("c.pt.sha256").unlink()
    with pytest.raises(CheckpointError, match=r"no c\.pt\.sha256"):
        checkpoint.load(path)
    assert checkpoint.load(path, digest)["epoch"] == 2  # an expected sha256 from elsewhere still verifies it
    with pytest.raises(CheckpointError, match="does not exist"):
        checkpoint.load(tmp_path / "nope.pt")


def test_unknown_format_is_refused(tmp_path):
    path = tmp_path / "c.pt"
    checkpoint.save({**sample_state(), "format": 99}, path)
    with pytest.raises(CheckpointError, match="format 99"):
        checkpoint.load(path)


def test_overwrite_replaces_file_and_sidecar(tmp_path):
    path = tmp_path / "c.pt"
    checkpoint.save(sample_state(), path)
    digest = checkpoint.save({**sample_state(), "epoch": 3}, path)
    assert checkpoint.load(path)["epoch"] == 3
    assert path.with_name("c.pt.sha256").read_text().split()[0] == digest


def assert_same_weights(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def assert_same_metrics(h1, h2):
    assert [m.model_dump(include=set(METRICS)) for m in h1] == [m.model_dump(include=set(METRICS)) for m in h2]


def test_resume_equals_straight_through(data_dir, tmp_path):
    spec2 = resolve("mnist-cnn", {"epochs": 2, "train_limit": 1000, "test_limit": 200})
    spec1 = resolve("mnist-cnn", {"epochs": 1, "train_limit": 1000, "test_limit": 200})
    straight = fit(spec2, data_root=data_dir, out_dir=tmp_path / "straight")
    first = fit(spec1, data_root=data_dir, out_dir=tmp_path / "split")
    resumed = fit(spec2, data_root=data_dir, out_dir=tmp_path / "split",
                  resume=checkpoint.path_for(tmp_path / "split", 1))
    assert first.epochs == 1 and resumed.epochs == straight.epochs == 2
    a = checkpoint.load(checkpoint.path_for(tmp_path / "straight", 2))
    b = checkpoint.load(checkpoint.path_for(tmp_path / "split", 2))
    assert_same_weights(a["model"], b["model"])
    assert a["optimizer"]["state"].keys() == b["optimizer"]["state"].keys()
    for k in a["optimizer"]["state"]:
        assert torch.equal(a["optimizer"]["state"][k]["momentum_buffer"], b["optimizer"]["state"][k]["momentum_buffer"])
    assert_same_metrics(straight.history, resumed.history)
    assert resumed.test_accuracy == straight.test_accuracy
    # and it did learn something: epoch 2 differs from epoch 1
    e1 = checkpoint.load(checkpoint.path_for(tmp_path / "split", 1))["model"]
    assert not torch.equal(e1["features.0.weight"], b["model"]["features.0.weight"])


def test_resume_with_augmentation_and_adam(tmp_path):
    """Crop/flip draws and Adam's state survive a resume too (lenet on a tiny 32x32 ImageFolder)."""
    g = torch.Generator().manual_seed(0)
    for split, n in (("train", 24), ("test", 8)):
        for cls in ("a", "b"):
            d = tmp_path / "data" / "tiny" / split / cls
            d.mkdir(parents=True)
            for k in range(n):
                write_png(torch.randint(0, 256, (3, 32, 32), generator=g, dtype=torch.uint8), str(d / f"{k}.png"))
    common = {"dataset": "tiny", "batch_size": 8, "test_batch_size": 16, "augment": True}
    root = tmp_path / "data"
    straight = fit(resolve("cifar10-lenet", {**common, "epochs": 3}), data_root=root, out_dir=tmp_path / "s")
    fit(resolve("cifar10-lenet", {**common, "epochs": 1}), data_root=root, out_dir=tmp_path / "r")
    resumed = fit(resolve("cifar10-lenet", {**common, "epochs": 3}), data_root=root, out_dir=tmp_path / "r",
                  resume=checkpoint.path_for(tmp_path / "r", 1))
    a = checkpoint.load(checkpoint.path_for(tmp_path / "s", 3))
    b = checkpoint.load(checkpoint.path_for(tmp_path / "r", 3))
    assert_same_weights(a["model"], b["model"])
    assert_same_metrics(straight.history, resumed.history)
    assert straight.data.train_samples == 48 and straight.params == 62006 - 84 * 8 - 8


def test_resume_refuses_a_different_spec(data_dir, tmp_path):
    spec = resolve("mnist-fc", {"train_limit": 256, "test_limit": 100})
    fit(spec, data_root=data_dir, out_dir=tmp_path)
    other = resolve("mnist-fc", {"train_limit": 256, "test_limit": 100, "epochs": 2, "lr": 0.1})
    with pytest.raises(CheckpointError, match="lr differ"):
        fit(other, data_root=data_dir, resume=checkpoint.path_for(tmp_path, 1))


def test_same_spec_and_seed_give_identical_metrics(data_dir, tmp_path):
    spec = resolve("mnist-cnn", {"epochs": 2, "train_limit": 1000, "test_limit": 200})
    r1 = fit(spec, data_root=data_dir, out_dir=tmp_path / "a")
    r2 = fit(spec, data_root=data_dir, out_dir=tmp_path / "b")
    assert_same_metrics(r1.history, r2.history)
    assert r1.confusion == r2.confusion
    assert_same_weights(checkpoint.load(checkpoint.path_for(tmp_path / "a", 2))["model"],
                        checkpoint.load(checkpoint.path_for(tmp_path / "b", 2))["model"])
    r3 = fit(resolve("mnist-cnn", {"epochs": 2, "train_limit": 1000, "test_limit": 200, "seed": 1}),
             data_root=data_dir)
    assert [m.train_loss for m in r3.history] != [m.train_loss for m in r1.history]


def test_only_the_newest_checkpoints_are_kept(data_dir, tmp_path):
    spec = resolve("mnist-fc", {"epochs": 4, "train_limit": 300, "test_limit": 100, "keep_checkpoints": 2})
    fit(spec, data_root=data_dir, out_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.glob("epoch-*")) == [
        "epoch-003.pt", "epoch-003.pt.sha256", "epoch-004.pt", "epoch-004.pt.sha256"]
    checkpoint.load(checkpoint.path_for(tmp_path, 4))  # the final one, intact
