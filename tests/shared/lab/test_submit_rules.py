"""The one set of submit-time rules (shared.lab.specs.resolve_checked) that the API, the CLI and sweeps share."""

from __future__ import annotations

import pytest

from shared.lab.specs import MNIST_MEAN, MNIST_STD, SpecError, resolve, resolve_checked


def fields(resolved) -> list[str]:
    return [w.field for w in resolved.warnings]


def test_a_preset_as_it_is_has_no_warnings():
    got = resolve_checked("mnist-cnn", {"epochs": 2, "train_limit": 500})
    assert got.warnings == [] and (got.spec.mean, got.spec.std) == (MNIST_MEAN, MNIST_STD)


@pytest.mark.parametrize("dataset", ["fashion-mnist", "cifar10"])
def test_a_dataset_override_takes_that_datasets_own_normalization(dataset):
    got = resolve_checked("mnist-fc", {"dataset": dataset})
    assert got.spec.dataset == dataset and got.spec.mean is None and got.spec.std is None  # computed at run time
    assert fields(got) == ["mean"]
    assert "mnist" in got.warnings[0].message and dataset in got.warnings[0].message


def test_a_dataset_override_keeps_mean_and_std_given_with_it():
    got = resolve_checked("mnist-fc", {"dataset": "fashion-mnist", "mean": [0.286], "std": [0.353]})
    assert (got.spec.mean, got.spec.std, got.warnings) == ([0.286], [0.353], [])


def test_a_stand_in_with_the_same_images_keeps_the_presets_normalization():
    """cifar10-jpeg is CIFAR-10 re-encoded: the lab's recipe (and its report) keep the preset's (0.5, 0.5)."""
    got = resolve_checked("cifar10-lenet", {"dataset": "cifar10-jpeg"})
    assert (got.spec.mean, got.spec.std, got.warnings) == ([0.5] * 3, [0.5] * 3, [])


def test_resolve_applies_the_same_rules():
    assert resolve("mnist-cnn", {"dataset": "cifar10"}).mean is None


def test_a_full_spec_says_which_defaults_it_took():
    got = resolve_checked(spec={"model": "cnn", "dataset": "mnist", "lr": 0.01})
    assert fields(got) == ["epochs", "batch_size", "optimizer", "momentum", "mean"]
    momentum = got.warnings[fields(got).index("momentum")].message
    assert "0.0" in momentum and "0.5" in momentum  # the default, and what the lab's SGD presets use


def test_a_full_spec_with_adam_does_not_mention_momentum():
    got = resolve_checked(spec={"model": "cnn", "dataset": "mnist", "optimizer": "adam", "lr": 0.001, "epochs": 2,
                                "batch_size": 64, "mean": [0.1], "std": [0.3]})
    assert got.warnings == []


def test_bad_specs_are_still_errors():
    with pytest.raises(SpecError, match="dataset"):
        resolve_checked("mnist-fc", {"dataset": "../x"})
