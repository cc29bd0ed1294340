"""Device-side batches: permutation, crop/flip, rank shards and epoch plans."""

from __future__ import annotations

import pytest
import torch

from shared.lab.specs import resolve
from shared.train.batches import PAD, DevicePipeline, EpochPlan, crop_flip, pixel_permutation, rank_slice, spec_permutation
from shared.train.data import Split

CPU = torch.device("cpu")


def make_split(n=10, c=1, h=28, w=28, seed=0) -> Split:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, c, h, w), generator=g, dtype=torch.uint8)
    return Split(images, torch.arange(n) % 10, [str(i) for i in range(10)], {"name": "synthetic"})


def test_per_seed_permutations_differ_by_seed_and_fixed_ones_do_not():
    def perm(seed, mode):
        return spec_permutation(resolve("mnist-fc-permuted", {"seed": seed, "permutation": mode}), 28, 28)

    assert torch.equal(perm(0, "fixed"), perm(1, "fixed"))
    assert not torch.equal(perm(0, "per_seed"), perm(1, "per_seed")) and torch.equal(perm(3, "per_seed"), perm(3, "per_seed"))
    assert spec_permutation(resolve("mnist-fc"), 28, 28) is None


def test_pixel_permutation_is_reproducible():
    a, b = pixel_permutation(28, 28, 0), pixel_permutation(28, 28, 0)
    assert torch.equal(a, b)
    assert sorted(a.tolist()) == list(range(784))  # a permutation, not just any index list
    assert not torch.equal(a, torch.arange(784))
    assert not torch.equal(a, pixel_permutation(28, 28, 1))


def test_permuted_batch_equals_manual_permutation_of_normalized_image():
    split = make_split()
    perm = pixel_permutation(28, 28, 7)
    mean, std = [0.1307], [0.3081]
    plain = DevicePipeline(split, CPU, mean, std)
    permuted = DevicePipeline(split, CPU, mean, std, permutation=perm)
    idx = torch.tensor([3, 0, 9])
    x, y = plain.batch(idx)
    xp, yp = permuted.batch(idx)
    reference = ((split.images[idx].float() / 255 - mean[0]) / std[0])
    assert torch.allclose(x, reference, atol=1e-5)
    # the lab's perm_pixel: view(-1, 784)[:, perm].view(-1, 1, 28, 28)
    manual = x.view(-1, 28 * 28)[:, perm].view(-1, 1, 28, 28)
    assert torch.allclose(xp, manual, atol=1e-6)
    assert not torch.allclose(xp, x)
    assert torch.equal(y, yp) and torch.equal(y, split.labels[idx])
    assert xp.dtype == torch.float32 and xp.shape == (3, 1, 28, 28)


def test_normalization_per_channel_and_broadcast():
    split = make_split(4, c=3, h=8, w=8)
    mean, std = [0.4914, 0.4822, 0.4465], [0.2023, 0.1994, 0.2010]
    x, _ = DevicePipeline(split, CPU, mean, std).batch(torch.arange(4))
    ref = (split.images.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    assert torch.allclose(x, ref, atol=1e-5)
    x1, _ = DevicePipeline(split, CPU, [0.5], [0.5]).batch(torch.arange(4))  # one value for every channel
    assert torch.allclose(x1, split.images.float() / 255 * 2 - 1, atol=1e-5)
    with pytest.raises(ValueError, match="channels"):
        DevicePipeline(split, CPU, [0.5, 0.5], [0.5, 0.5])


def test_crop_flip_centre_offset_without_flip_is_identity():
    x = make_split(5, c=3, h=32, w=32).images
    offsets = torch.full((5, 2), PAD, dtype=torch.long)
    out = crop_flip(x, offsets, torch.zeros(5, dtype=torch.bool))
    assert out.dtype == torch.uint8 and torch.equal(out, x)


def test_flip_reverses_columns():
    x = make_split(5, c=3, h=32, w=32).images
    offsets = torch.full((5, 2), PAD, dtype=torch.long)
    flips = torch.tensor([True, False, True, False, True])
    out = crop_flip(x, offsets, flips)
    assert torch.equal(out[flips], x[flips].flip(-1))
    assert torch.equal(out[~flips], x[~flips])


def test_crop_shifts_and_zero_pads_like_random_crop():
    x = make_split(2, c=3, h=32, w=32).images
    offsets = torch.tensor([[0, 0], [2 * PAD, 3]])
    out = crop_flip(x, offsets, torch.zeros(2, dtype=torch.bool))
    padded = torch.nn.functional.pad(x, (PAD, PAD, PAD, PAD))
    for i, (r, c) in enumerate(offsets.tolist()):
        assert torch.equal(out[i], padded[i, :, r:r + 32, c:c + 32])
    assert (out[0, :, :PAD, :] == 0).all() and (out[0, :, :, :PAD] == 0).all()
    assert torch.equal(out[0, :, PAD:, PAD:], x[0, :, :32 - PAD, :32 - PAD])


def test_augmented_batch_uses_the_plans_draws():
    split = make_split(6, c=3, h=32, w=32)
    plan = EpochPlan.make(6, seed=1, epoch=1, augment=True, device=CPU)
    assert plan.offsets.shape == (6, 2) and plan.flips.shape == (6,)
    assert int(plan.offsets.min()) >= 0 and int(plan.offsets.max()) <= 2 * PAD
    pipe = DevicePipeline(split, CPU, [0.0], [1.0])
    x, _ = pipe.batch(plan.order, plan.offsets, plan.flips)
    expected = crop_flip(split.images[plan.order], plan.offsets, plan.flips).float() / 255
    assert torch.allclose(x, expected, atol=1e-6)


@pytest.mark.parametrize("world_size", [1, 2, 3, 4])
@pytest.mark.parametrize("n, batch_size", [(1000, 64), (130, 8), (37, 37), (5, 7)])
def test_rank_slices_partition_every_global_batch(world_size, n, batch_size):
    plan = EpochPlan.make(n, seed=0, epoch=1, augment=False, device=CPU)
    batches = plan.global_batches(batch_size, world_size)
    covered = []
    for gb in batches:
        parts = [rank_slice(gb, r, world_size) for r in range(world_size)]
        positions = [list(range(p.start, p.stop)) for p in parts]
        flat = [i for pos in positions for i in pos]
        assert flat == list(range(gb.start, gb.stop))  # disjoint, in order, covering the batch exactly
        sizes = [len(pos) for pos in positions]
        assert max(sizes) - min(sizes) <= 1
        covered += flat
    dropped = n - len(covered)
    assert covered == list(range(len(covered)))
    assert dropped == 0 or 0 < dropped < 2 * world_size  # only a too-small last batch is left out


def test_global_batches_drop_only_a_last_batch_too_small_for_batchnorm():
    plan = EpochPlan.make(129, seed=0, epoch=1, augment=False, device=CPU)
    assert [(s.start, s.stop) for s in plan.global_batches(64, 1)] == [(0, 64), (64, 128)]  # last 1 dropped
    assert len(plan.global_batches(64, 1)) == 2
    plan = EpochPlan.make(130, seed=0, epoch=1, augment=False, device=CPU)
    assert plan.global_batches(64, 1)[-1] == slice(128, 130)
    assert len(EpochPlan.make(1, 0, 1, False, CPU).global_batches(64, 1)) == 1  # never drop the only batch


def test_epoch_plan_reproducible_per_seed_and_epoch():
    a = EpochPlan.make(500, seed=3, epoch=2, augment=True, device=CPU)
    b = EpochPlan.make(500, seed=3, epoch=2, augment=True, device=CPU)
    assert torch.equal(a.order, b.order) and torch.equal(a.offsets, b.offsets) and torch.equal(a.flips, b.flips)
    assert sorted(a.order.tolist()) == list(range(500))
    assert not torch.equal(a.order, EpochPlan.make(500, seed=3, epoch=3, augment=True, device=CPU).order)
    assert not torch.equal(a.order, EpochPlan.make(500, seed=4, epoch=2, augment=True, device=CPU).order)
    plain = EpochPlan.make(500, seed=3, epoch=2, augment=False, device=CPU)
    assert plain.offsets is None and plain.flips is None
    assert torch.equal(plain.order, a.order)  # augmentation does not change the order


def test_epoch_plan_ignores_the_global_rng():
    torch.manual_seed(0)
    a = EpochPlan.make(100, seed=1, epoch=1, augment=False, device=CPU).order
    torch.manual_seed(12345)
    torch.rand(10)
    b = EpochPlan.make(100, seed=1, epoch=1, augment=False, device=CPU).order
    assert torch.equal(a, b)
