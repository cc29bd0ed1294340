"""The submit-time checks (shared.train.runnable) called directly, as `cnnlab sweep` calls them without a store."""

from __future__ import annotations

import pytest

from shared.lab.specs import PRESETS, SpecError, preset_spec, resolve
from shared.train.runnable import check_runnable, queue_for


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_is_runnable(preset, data_dir):
    check_runnable(preset_spec(preset), data_dir)


@pytest.mark.parametrize("preset, overrides, field, needle", [
    ("mnist-cnn", {"model_args.n_feature": 0}, "model_args", "no weights"),
    ("cifar10-vgg", {"model_args.cfg": [1000000]}, "model_args", "at most 500,000,000"),
    ("mnist-cnn", {"mean": [0.1, 0.2, 0.3], "std": [1, 1, 1]}, "mean", "1 channels"),
    ("mnist-cnn", {"dataset": "no-such-set"}, "dataset", "not found"),
    ("mnist-cnn", {"world_size": 64}, "world_size", "at most"),
    ("mnist-cnn", {"model_args.n_feature": 2000, "batch_size": 65536}, "spec", "needs about 7"),
])
def test_what_cannot_run_is_a_spec_error_naming_the_field(preset, overrides, field, needle, data_dir):
    with pytest.raises(SpecError) as caught:
        check_runnable(resolve(preset, overrides), data_dir)
    [error] = caught.value.errors
    assert error["field"] == field and needle in error["message"]


def test_a_cuda_spec_goes_to_the_gpu_queue():
    assert queue_for(preset_spec("mnist-cnn")) == "cpu"
    assert queue_for(resolve("mnist-cnn", {"device": "cuda"})) == "gpu"
