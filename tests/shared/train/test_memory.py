"""The submit-time memory estimate against sizes worked out by hand."""

from __future__ import annotations

import subprocess
import sys

from support import REPO

from shared.lab.settings import settings
from shared.lab.specs import resolve
from shared.train.memory import estimate


def test_fc2_weights_activations_and_data_by_hand():
    e = estimate(resolve("mnist-fc"), (1, 28, 28), 10)
    assert e.params == 6442 and e.weights_bytes == 6442 * 4 * 3  # weights, gradients, SGD momentum
    # the evaluation chunk (the whole test split, 10,000) is the larger:
    # Flatten 784 + Linear 8 + ReLU 8 + Linear 8 + ReLU 8 + Linear 10 floats
    assert e.activations_bytes == 10_000 * (784 + 8 + 8 + 8 + 8 + 10) * 4
    assert e.data_bytes == (60_000 + 10_000) * 784  # uint8, limits absent


def test_adam_limits_ranks_and_batch_move_the_estimate():
    tiny_test = {"test_limit": 1}  # the evaluation chunk smaller than any training batch
    base = estimate(resolve("mnist-cnn", tiny_test), (1, 28, 28), 10)
    adam = estimate(resolve("mnist-cnn", {**tiny_test, "optimizer": "adam"}), (1, 28, 28), 10)
    assert adam.weights_bytes == base.weights_bytes // 3 * 4  # Adam keeps two moments, SGD one buffer
    big = estimate(resolve("mnist-cnn", {**tiny_test, "batch_size": 640}), (1, 28, 28), 10)
    assert big.activations_bytes == 10 * base.activations_bytes
    split = estimate(resolve("mnist-cnn", {**tiny_test, "batch_size": 640, "world_size": 2}), (1, 28, 28), 10)
    assert split.activations_bytes == 5 * base.activations_bytes  # each rank holds its half of the batch
    limited = estimate(resolve("mnist-cnn", {"train_limit": 1000, "test_limit": 100}), (1, 28, 28), 10)
    assert limited.data_bytes == 1100 * 784


def test_the_trainer_base_is_counted_per_rank_and_matches_a_measured_trainer():
    """The probe: memory_gb 0.3-0.5 was accepted and every such job died before its first epoch (the estimate left
    out the trainer itself). The base is what a fresh trainer process holds once its modules are imported."""
    one = estimate(resolve("mnist-fc"), (1, 28, 28), 10)
    two = estimate(resolve("mnist-fc", {"world_size": 2}), (1, 28, 28), 10)
    assert one.base_bytes == int(settings().trainer_base_gb * 2**30) and two.base_bytes == 2 * one.base_bytes
    assert one.total_gb > 0.5  # memory_gb 0.5 can no longer be accepted for the smallest preset
    probe = ("import re, worker.trainer; print(int(re.search(r'VmRSS:\\s+(\\d+)', "
             "open('/proc/self/status').read()).group(1)) * 1024)")
    rss = int(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                             cwd=REPO, timeout=120).stdout)
    # The base must cover a fresh trainer (an estimate below it accepts jobs that die) without padding it more
    # than twofold; the figure depends on torch's build (CUDA 0.92 GB, CPU-only 0.53 GB), hence the band.
    assert rss <= one.base_bytes, f"a trainer holds {rss / 2**30:.2f} GB before its job: raise the base"
    assert rss > 0.45 * one.base_bytes, f"a trainer holds only {rss / 2**30:.2f} GB: the base over-counts"
