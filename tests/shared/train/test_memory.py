"""The submit-time memory estimate against sizes worked out by hand."""

from __future__ import annotations

from shared.lab.specs import resolve
from shared.train.memory import estimate


def test_fc2_weights_activations_and_data_by_hand():
    e = estimate(resolve("mnist-fc"), (1, 28, 28), 10)
    assert e.params == 6442 and e.weights_bytes == 6442 * 4 * 3  # weights, gradients, SGD momentum
    # the test batch (1000) is the larger: Flatten 784 + Linear 8 + ReLU 8 + Linear 8 + ReLU 8 + Linear 10 floats
    assert e.activations_bytes == 1000 * (784 + 8 + 8 + 8 + 8 + 10) * 4
    assert e.data_bytes == (60_000 + 10_000) * 784  # uint8, limits absent


def test_adam_limits_ranks_and_batch_move_the_estimate():
    base = estimate(resolve("mnist-cnn", {"test_batch_size": 1}), (1, 28, 28), 10)
    adam = estimate(resolve("mnist-cnn", {"test_batch_size": 1, "optimizer": "adam"}), (1, 28, 28), 10)
    assert adam.weights_bytes == base.weights_bytes // 3 * 4  # Adam keeps two moments, SGD one buffer
    big = estimate(resolve("mnist-cnn", {"test_batch_size": 1, "batch_size": 640}), (1, 28, 28), 10)
    assert big.activations_bytes == 10 * base.activations_bytes
    split = estimate(resolve("mnist-cnn", {"test_batch_size": 1, "batch_size": 640, "world_size": 2}), (1, 28, 28), 10)
    assert split.activations_bytes == 5 * base.activations_bytes  # each rank holds its half of the batch
    limited = estimate(resolve("mnist-cnn", {"train_limit": 1000, "test_limit": 100}), (1, 28, 28), 10)
    assert limited.data_bytes == 1100 * 784
