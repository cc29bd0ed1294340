"""Batches made on the training device: shuffle, shard, crop/flip, permute and normalize whole batches at once."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from shared.train import augment
from shared.train.augment import alternating_flips
from shared.train.data import Split

PAD = 4  # pixels of zero padding before a random crop, as RandomCrop(32, padding=4)


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """One CPU generator per (seed, epoch): every rank draws the same order, and a resumed run the same too."""
    return torch.Generator().manual_seed((seed * 1_000_003 + epoch) % 2**63)


def pixel_permutation(height: int, width: int, seed: int) -> torch.Tensor:
    """The fixed pixel shuffle of the lab's permuted-MNIST experiment, reproducible from `seed`."""
    return torch.randperm(height * width, generator=torch.Generator().manual_seed(seed))


def permutation_rng_seed(spec) -> int:
    """The RNG seed of the spec's pixel permutation: `permutation_seed`, or the run's `seed` when per_seed."""
    return spec.seed if spec.permutation == "per_seed" else spec.permutation_seed


def spec_permutation(spec, height: int, width: int) -> torch.Tensor | None:
    """The spec's pixel permutation, or None where it keeps the pixels in place."""
    return pixel_permutation(height, width, permutation_rng_seed(spec)) if spec.permute_pixels else None


@dataclass
class EpochPlan:
    """An epoch's sample order and augmentation draws, for the whole (global) batch sequence; stacked, the
    plans of S seeds trained together, (S, ...) each."""

    order: torch.Tensor  # (N,) int64 sample indices; stacked (S, N)
    offsets: torch.Tensor | None  # (N, 2) crop offsets in [0, 2*PAD], by position in `order`; stacked (S, N, 2)
    flips: torch.Tensor | None  # (N,) bool; stacked (S, N)

    @classmethod
    def make(cls, n: int, seed: int, epoch: int, augment: bool, device: torch.device, *, shuffle: bool = True,
             base: torch.Tensor | None = None, pad: int = PAD, flip: str = "random") -> "EpochPlan":
        """The plan of `epoch`: a pure function of its arguments, so every rank and a resumed run agree.

        `base` (N,) is the training set's order before shuffling (None: the stored order); shuffle=False
        keeps it every epoch. `pad`: the largest shift; flip "alternating": each image every other epoch.
        """
        g = epoch_generator(seed, epoch)
        perm = torch.randperm(n, generator=g)  # drawn either way: augmentation draws stay the same without shuffle
        order = perm if shuffle else torch.arange(n)
        if base is not None:
            order = base.cpu()[order]
        offsets = torch.randint(0, 2 * pad + 1, (n, 2), generator=g) if augment else None
        flips = torch.rand(n, generator=g) < 0.5 if augment else None
        if augment and flip == "alternating":
            flips = alternating_flips(n, seed, epoch)[order]  # by position in the order, as the other draws
        move = lambda t: None if t is None else t.to(device, non_blocking=True)  # noqa: E731
        return cls(move(order), move(offsets), move(flips))

    @classmethod
    def stack(cls, plans: list["EpochPlan"]) -> "EpochPlan":
        """The plans of seeds trained together as one: a batch takes the same positions of every seed's plan."""
        def stacked(name: str) -> torch.Tensor | None:
            parts = [getattr(p, name) for p in plans]
            return None if parts[0] is None else torch.stack(parts)

        return cls(stacked("order"), stacked("offsets"), stacked("flips"))

    @property
    def loss_shape(self) -> tuple[int, ...]:
        """The shape of a step's loss on this plan: () for one plan, (S,) for S stacked."""
        return tuple(self.order.shape[:-1])

    def global_batches(self, batch_size: int, world_size: int) -> list[slice]:
        return batch_slices(self.order.shape[-1], batch_size, world_size)

    def take(self, part: slice) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Sample indices, crop offsets and flips at positions `part`; stacked, seed-major (S*B,) as one batch."""
        if self.offsets is None:
            return self.order[..., part].reshape(-1), None, None
        return self.order[..., part].reshape(-1), self.offsets[..., part, :].reshape(-1, 2), \
            self.flips[..., part].reshape(-1)


def class_order(labels: torch.Tensor) -> torch.Tensor:
    """Sample indices (N,) sorted by label, stored order within a class: all 0s, then all 1s, ..."""
    return torch.sort(labels.cpu(), stable=True).indices


def batch_slices(n: int, batch_size: int, world_size: int = 1) -> list[slice]:
    """Positions of each global batch; a last batch too small to give every rank 2 samples is dropped
    (BatchNorm cannot train on one sample)."""
    out = [slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]
    if len(out) > 1 and out[-1].stop - out[-1].start < 2 * world_size:
        out.pop()
    return out


def rank_slice(batch: slice, rank: int, world_size: int) -> slice:
    """This rank's contiguous share of a global batch (sizes differ by at most one)."""
    n = batch.stop - batch.start
    lo = batch.start + n * rank // world_size
    hi = batch.start + n * (rank + 1) // world_size
    return slice(lo, hi)


class DevicePipeline:
    """A split moved once to the device as uint8; `batch()` returns normalized float inputs and labels."""

    def __init__(self, split: Split, device: torch.device, mean: list[float], std: list[float],
                 permutation: torch.Tensor | None = None, channels_last: bool = False, pad: int = PAD,
                 padding: str = "zeros"):
        c = split.images.shape[1]
        if len(mean) == 1 and c > 1:
            mean, std = mean * c, std * c
        if len(mean) != c:
            raise ValueError(f"normalization has {len(mean)} channels, dataset {split.info.get('name')} has {c}")
        self.images = split.images.to(device)  # (N, C, H, W) uint8: 4x less memory than float
        self.labels = split.labels.to(device)
        m = torch.tensor(mean, device=device).view(1, c, 1, 1)
        s = torch.tensor(std, device=device).view(1, c, 1, 1)
        # (x/255 - mean)/std as one multiply-add: x*scale + bias
        self.scale, self.bias = 1.0 / (255.0 * s), -m / s
        self.permutation = None if permutation is None else permutation.to(device)
        self.channels_last = channels_last
        self.pad, self.reflect = pad, padding == "reflect"  # the crop's padding (EpochPlan's offsets are in [0, 2 pad])
        self.device = device

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, idx: torch.Tensor, offsets: torch.Tensor | None = None, flips: torch.Tensor | None = None):
        """Inputs (B, C, H, W) float32 and labels (B,) for sample indices `idx`, augmented when offsets are given."""
        # index_select, not images[idx]: the same gather, several times faster on CPU (an MNIST batch: ~6 vs ~25 us)
        x = self.images.index_select(0, idx)
        if offsets is not None:
            x = augment.crop_flip(x, offsets, flips, self.pad, self.reflect)
        if self.permutation is not None:
            b, c, h, w = x.shape
            x = x.flatten(2).index_select(2, self.permutation).view(b, c, h, w)
        x = torch.addcmul(self.bias, x.float(), self.scale)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, self.labels.index_select(0, idx)


def crop_flip(x: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
    """Random crop after PAD-pixel zero padding plus horizontal flip, for a whole uint8 batch in one gather."""
    return augment.crop_flip(x, offsets, flips, PAD, reflect=False)
