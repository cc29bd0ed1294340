"""Sharding across ranks, and checkpoints that move between world sizes (gloo ranks on the CPU)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from support import REPO

from shared.train import checkpoint
from shared.train.batches import EpochPlan, rank_slice


@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_each_epoch_the_ranks_see_disjoint_samples_covering_the_split(world_size):
    n, batch = 1000, 64
    seen_per_epoch = []
    for epoch in (1, 2):
        plan = EpochPlan.make(n, seed=7, epoch=epoch, augment=False, device=torch.device("cpu"))
        per_rank = [torch.cat([plan.order[rank_slice(b, r, world_size)] for b in plan.global_batches(batch, world_size)])
                    for r in range(world_size)]
        everything = torch.cat(per_rank)
        assert len(everything) == len(set(everything.tolist())) == n  # disjoint, and together the whole split
        assert max(len(p) for p in per_rank) - min(len(p) for p in per_rank) <= len(plan.global_batches(batch, world_size))
        seen_per_epoch.append(per_rank[0])
    if world_size > 1:  # reshuffled per epoch: rank 0 gets other samples in epoch 2
        assert set(seen_per_epoch[0].tolist()) != set(seen_per_epoch[1].tolist())


def _train(data_dir, out, *extra):
    proc = subprocess.run([sys.executable, "-m", "shared.cli", "train", "mnist-cnn", "--data-dir", str(data_dir),
                           "--out", str(out), "--set", "train_limit=1024", "--set", "test_limit=200", *extra],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_checkpoint_resumes_at_another_world_size(data_dir, tmp_path):
    one = _train(data_dir, tmp_path / "a")
    assert one["environment"]["world_size"] == 1
    two = _train(data_dir, tmp_path / "a", "--set", "epochs=2", "--set", "world_size=2",
                 "--resume", one["checkpoint"])
    assert two["epochs"] == 2 and two["environment"]["world_size"] == 2 and two["environment"]["backend"] == "gloo"
    state = checkpoint.load(two["checkpoint"])
    assert state["epoch"] == 2 and [m["epoch"] for m in state["history"]] == [1, 2]
    assert state["history"][0] == checkpoint.load(one["checkpoint"])["history"][0]  # epoch 1 carried over
