"""Specs: presets carry the lab's hyperparameters; bad input names the field at fault."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.lab.specs import PRESETS, Spec, SpecError, parse_assignments, preset_spec, resolve

ALL_PRESETS = ["mnist-fc", "mnist-cnn", "mnist-fc-permuted", "mnist-cnn-permuted", "cifar10-lenet",
               "cifar10-lenet-1989", "cifar10-vgg", "cifar10-fast"]


def fields(err: SpecError) -> list[str]:
    return [e["field"] for e in err.errors]


def test_the_presets():
    assert sorted(PRESETS) == sorted(ALL_PRESETS)


@pytest.mark.parametrize("name", ALL_PRESETS)
def test_every_preset_validates(name):
    spec = preset_spec(name)
    assert isinstance(spec, Spec)
    assert resolve(name) == spec
    assert spec.seed == 0 and spec.world_size == 1 and spec.device == "auto"


@pytest.mark.parametrize("name, model, permuted", [
    ("mnist-fc", "fc2", False), ("mnist-cnn", "cnn", False),
    ("mnist-fc-permuted", "fc2", True), ("mnist-cnn-permuted", "cnn", True),
])
def test_mnist_presets_match_the_seed(name, model, permuted):
    s = preset_spec(name)
    assert (s.model, s.dataset) == (model, "mnist")
    assert s.model_args == ({"n_hidden": 8} if model == "fc2" else {"n_feature": 6})
    assert (s.optimizer, s.lr, s.momentum, s.weight_decay) == ("sgd", 0.01, 0.5, 0.0)
    assert (s.batch_size, s.test_batch_size, s.epochs) == (64, 1000, 1)
    assert (s.mean, s.std) == ([0.1307], [0.3081])
    assert s.permute_pixels is permuted
    assert s.augment is False


def test_cifar10_lenet_matches_the_seed():
    s = preset_spec("cifar10-lenet")
    assert (s.model, s.dataset, s.model_args) == ("lenet", "cifar10", {})
    assert (s.optimizer, s.lr, s.weight_decay) == ("adam", 1e-3, 0.0)
    assert (s.batch_size, s.test_batch_size, s.epochs) == (64, 8, 10)
    assert (s.mean, s.std) == ([0.5] * 3, [0.5] * 3)
    assert s.augment is False and s.permute_pixels is False


def test_cifar10_vgg_matches_the_seed():
    s = preset_spec("cifar10-vgg")
    assert (s.model, s.dataset) == ("vgg", "cifar10")
    assert (s.optimizer, s.lr) == ("adam", 1e-3)
    assert (s.batch_size, s.test_batch_size, s.epochs) == (128, 128, 10)
    assert s.augment is True
    assert s.mean == [0.4914, 0.4822, 0.4465] and s.std == [0.2023, 0.1994, 0.2010]


def test_overrides_replace_fields():
    s = resolve("cifar10-lenet", {"dataset": "cifar10-jpeg", "epochs": 2, "train_limit": 100})
    assert (s.dataset, s.epochs, s.train_limit) == ("cifar10-jpeg", 2, 100)
    assert s.lr == 1e-3  # untouched fields keep the preset's values


def test_unknown_field_is_named():
    with pytest.raises(SpecError) as exc:
        resolve("mnist-fc", {"learning_rate": 0.1})
    assert "learning_rate" in fields(exc.value)
    assert "learning_rate" in str(exc.value)


@pytest.mark.parametrize("field, value", [
    ("epochs", 0), ("lr", -1), ("optimizer", "rmsprop"), ("batch_size", 0), ("momentum", 1.0),
    ("model", "resnet"), ("dataset", "../etc"), ("device", "tpu"), ("std", [0.0]),
    ("max_minutes", 0), ("memory_gb", -1), ("memory_gb", 5000), ("keep_checkpoints", 0),
])
def test_bad_value_names_the_field(field, value):
    with pytest.raises(SpecError) as exc:
        resolve("mnist-fc", {field: value})
    assert fields(exc.value) == [field]
    assert str(exc.value).startswith(f"{field}: ")


def test_several_errors_are_all_reported():
    with pytest.raises(SpecError) as exc:
        resolve("mnist-fc", {"epochs": 0, "lr": -1})
    assert sorted(fields(exc.value)) == ["epochs", "lr"]


def test_cross_field_rules():
    with pytest.raises(SpecError, match="mean and std go together"):
        resolve("mnist-fc", {"std": None})
    with pytest.raises(SpecError, match="one value per channel"):
        resolve("mnist-fc", {"mean": [0.5, 0.5]})
    with pytest.raises(SpecError, match="at least world_size"):
        resolve("mnist-fc", {"batch_size": 2, "world_size": 4})


def test_unknown_preset():
    with pytest.raises(SpecError) as exc:
        resolve("mnist-resnet")
    assert fields(exc.value) == ["preset"]
    assert "mnist-resnet" in str(exc.value) and "mnist-cnn" in str(exc.value)


def test_preset_xor_spec():
    with pytest.raises(SpecError):
        resolve()
    with pytest.raises(SpecError):
        resolve("mnist-fc", spec=preset_spec("mnist-fc").model_dump())
    with pytest.raises(SpecError, match="overrides go with a preset"):
        resolve(spec=preset_spec("mnist-fc").model_dump(), overrides={"epochs": 2})


def test_full_spec_round_trips():
    dumped = preset_spec("cifar10-vgg").model_dump()
    assert resolve(spec=dumped) == preset_spec("cifar10-vgg")
    with pytest.raises(SpecError) as exc:
        resolve(spec={k: v for k, v in dumped.items() if k != "model"})
    assert fields(exc.value) == ["model"]


def test_dotted_model_args_override():
    s = resolve("mnist-cnn", {"model_args.n_feature": 12})
    assert s.model_args == {"n_feature": 12}
    s = resolve("mnist-cnn", {"model_args.n_hidden": 20})
    assert s.model_args == {"n_feature": 6, "n_hidden": 20}  # merged, not replaced
    with pytest.raises(SpecError) as exc:
        resolve("mnist-cnn", {"optimizer.lr": 0.1})
    assert fields(exc.value) == ["optimizer.lr"]


def test_spec_is_frozen():
    s = preset_spec("mnist-fc")
    with pytest.raises(ValidationError):
        s.epochs = 3


def test_parse_assignments():
    got = parse_assignments(["epochs=3", "lr=0.5", "augment=true", "mean=[0.5, 0.5, 0.5]",
                             "dataset=cifar10-jpeg", "model_args.n_feature=8", "note=a=b"])
    assert got == {"epochs": 3, "lr": 0.5, "augment": True, "mean": [0.5, 0.5, 0.5],
                   "dataset": "cifar10-jpeg", "model_args.n_feature": 8, "note": "a=b"}
    assert isinstance(got["epochs"], int) and isinstance(got["lr"], float)
    assert parse_assignments([]) == {}


@pytest.mark.parametrize("bad", ["epochs", "=3", ""])
def test_parse_assignments_rejects_pairs_without_key_or_equals(bad):
    with pytest.raises(SpecError) as exc:
        parse_assignments([bad])
    assert "key=value" in str(exc.value)


def test_parsed_assignments_resolve():
    s = resolve("mnist-cnn", parse_assignments(["epochs=2", "model_args.n_feature=4", "permute_pixels=true"]))
    assert (s.epochs, s.model_args, s.permute_pixels) == (2, {"n_feature": 4}, True)


def test_sync_bn_on_the_cpu_is_refused():
    with pytest.raises(SpecError, match="sync_bn needs GPUs"):
        resolve("cifar10-vgg", {"world_size": 2, "sync_bn": True, "device": "cpu"})
    assert resolve("cifar10-vgg", {"world_size": 2, "sync_bn": True, "device": "cuda"}).sync_bn


@pytest.mark.parametrize("device", ["auto", "cpu"])
def test_fp16_off_cuda_is_refused_naming_the_field(device):
    with pytest.raises(SpecError) as exc:
        resolve("cifar10-fast", {"precision": "fp16", "device": device})
    assert [e["field"] for e in exc.value.errors] == ["precision"] and "device cuda" in str(exc.value)


def test_lenet_1989_is_the_lab_recipe_with_sigmoid_and_average_pooling():
    lab, old = preset_spec("cifar10-lenet").model_dump(), preset_spec("cifar10-lenet-1989").model_dump()
    assert old.pop("model_args") == {"activation": "sigmoid", "pool": "avg"} and lab.pop("model_args") == {}
    assert old == lab
