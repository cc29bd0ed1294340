"""The lab's training loop, as the lab document writes it, to measure the engine against.

torchvision datasets decoded per sample through PIL + transforms (ToTensor, Normalize; RandomCrop(32, padding=4)
and RandomHorizontalFlip for VGG), a shuffling torch DataLoader (num_workers=2 for CIFAR as the seed has it,
none for MNIST, whose seed loaders set no num_workers), and the lab's loop body: to(device), zero_grad,
forward, loss, backward, step, with the lab's `loss.item()` print every 100 batches. The networks come from
shared.train.nets, so both sides train the same architecture; the permuted presets apply the lab's perm_pixel per batch.

Data: torchvision.datasets.MNIST(data_dir, download=False) reads <data_dir>/MNIST/raw; CIFAR-10 is read with
torchvision.datasets.ImageFolder(<data_dir>/cifar10-jpeg/train) because the original release is not on this
machine (ImageFolder sorts the class folders alphabetically, which is CIFAR-10's own label order).

    python -m bench.handout_loop mnist-cnn --steps 200
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torchvision import datasets, transforms

from shared.lab.specs import preset_spec
from shared.train.nets import build_model

DEFAULT_DATA = Path(os.environ.get("CNNLAB_DATA_DIR", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))


def seed_loader(preset: str, data_dir: Path, train: bool = True, num_workers: int | None = None):
    """The DataLoader the seed builds for this experiment (train or test)."""
    spec = preset_spec(preset)
    if spec.dataset == "mnist":
        tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
        ds = datasets.MNIST(str(data_dir), train=train, download=False, transform=tf)
        batch = spec.batch_size if train else spec.test_batch_size
        # the seed: DataLoader(..., batch_size=64, shuffle=True); its MNIST loaders set no num_workers
        return torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True,
                                           num_workers=0 if num_workers is None else num_workers)
    norm = transforms.Normalize(tuple(spec.mean), tuple(spec.std))
    if spec.augment and train:
        tf = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
                                 transforms.ToTensor(), norm])
    else:
        tf = transforms.Compose([transforms.ToTensor(), norm])
    ds = datasets.ImageFolder(str(Path(data_dir) / "cifar10-jpeg" / ("train" if train else "test")), transform=tf)
    batch = spec.batch_size if train else spec.test_batch_size
    return torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=train,
                                       num_workers=2 if num_workers is None else num_workers)


def seed_model_and_optimizer(preset: str, device: torch.device, seed: int = 0):
    spec = preset_spec(preset)
    torch.manual_seed(seed)
    in_shape = (1, 28, 28) if spec.dataset == "mnist" else (3, 32, 32)
    model = build_model(spec.model, in_shape, 10, **spec.model_args).to(device)
    if spec.optimizer == "sgd":
        opt = optim.SGD(model.parameters(), lr=spec.lr, momentum=spec.momentum)
    else:
        opt = optim.Adam(model.parameters(), lr=spec.lr)
    # MNIST nets end in log_softmax and the seed uses F.nll_loss; CIFAR nets give logits, nn.CrossEntropyLoss
    criterion = F.nll_loss if spec.dataset == "mnist" else nn.CrossEntropyLoss()
    return model, opt, criterion


def perm_pixel(data: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """The lab's perm_pixel, verbatim."""
    data_new = data.view(-1, 28 * 28)
    data_new = data_new[:, perm]
    data_new = data_new.view(-1, 1, 28, 28)
    return data_new


def handout_throughput(preset: str, data_dir: Path = DEFAULT_DATA, steps: int | None = None, warmup: int = 5,
                    device: torch.device | str = "cpu", num_workers: int | None = None, verbose: bool = False) -> dict:
    """Train the lab's way and time `steps` batches after `warmup` untimed ones (steps=None: rest of one epoch).

    The warmup takes in the DataLoader's worker start-up and the first allocations; the timed part is steady
    state, the same rule bench/throughput.py applies to the engine."""
    device = torch.device(device)
    spec = preset_spec(preset)
    loader = seed_loader(preset, data_dir, True, num_workers)
    model, optimizer, criterion = seed_model_and_optimizer(preset, device)
    perm = torch.randperm(784) if spec.permute_pixels else None
    model.train()
    total = len(loader) if steps is None else min(len(loader), warmup + steps)
    samples, start, last_loss = 0, None, None
    for batch_idx, (data, target) in enumerate(loader):
        if batch_idx == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        if batch_idx >= total:
            break
        data, target = data.to(device), target.to(device)
        if perm is not None:
            data = perm_pixel(data, perm)
        optimizer.zero_grad()
        output = model(data)
        loss = criterion(output, target)
        loss.backward()
        optimizer.step()
        if batch_idx % 100 == 0:
            last_loss = loss.item()  # the seed prints this every 100 batches
            if verbose:
                print(f"Train: [{batch_idx * len(data)}/{len(loader.dataset)}]\tLoss: {last_loss:.6f}")
        if batch_idx >= warmup:
            samples += len(target)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {"samples": samples, "steps": total - warmup, "warmup_steps": warmup, "seconds": seconds,
            "samples_per_second": samples / seconds, "last_logged_loss": last_loss,
            "num_workers": loader.num_workers, "batch_size": loader.batch_size}


def seed_loader_throughput(preset: str, data_dir: Path = DEFAULT_DATA, steps: int = 200, warmup: int = 5,
                           num_workers: int | None = None) -> dict:
    """The lab's DataLoader alone (decode, transforms, collate; no training): the data side's ceiling."""
    loader = seed_loader(preset, data_dir, True, num_workers)
    samples, start = 0, None
    for batch_idx, (_data, target) in enumerate(loader):
        if batch_idx == warmup:
            start = time.perf_counter()
        if batch_idx >= warmup + steps:
            break
        if batch_idx >= warmup:
            samples += len(target)
    seconds = time.perf_counter() - start
    return {"samples": samples, "seconds": seconds, "samples_per_second": samples / seconds}


@torch.inference_mode()
def seed_test(model, loader, device, perm=None, log_softmax_outputs=True) -> float:
    """The lab's test(): accuracy over the test loader (a fraction)."""
    model.eval()
    correct = total = 0
    for data, target in loader:
        data, target = data.to(device), target.to(device)
        if perm is not None:
            data = perm_pixel(data, perm)
        pred = model(data).argmax(1)
        correct += (pred == target).sum().item()
        total += len(target)
    return correct / total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("preset")
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default: the rest of one epoch)")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    print(json.dumps(handout_throughput(args.preset, args.data_dir.resolve(), args.steps, args.warmup,
                                     verbose=args.verbose)))


if __name__ == "__main__":
    main()
