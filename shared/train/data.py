"""Datasets as in-memory uint8 tensors: MNIST, CIFAR-10 and ImageFolder trees, decoded once and cached."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from shared.lab.settings import settings
from shared.train.datasets import CIFAR10_FILES, MNIST_FILES

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CACHE_FORMAT = "2"  # bump when decoding or sample order changes, so old caches are not reused
BUILTIN = {"mnist": ((1, 28, 28), [str(i) for i in range(10)]), "cifar10": ((3, 32, 32), CIFAR10_CLASSES)}


# Splits already loaded in this process, keyed by cache file (its name holds the dataset, the split and the
# source files' names, sizes and mtimes, so changed sources load afresh), with the cache file's identity when
# loaded. The tensors are shared between runs: nothing writes into a split.
_RESIDENT: OrderedDict[Path, tuple[tuple[int, int, int] | None, Split]] = OrderedDict()


class DataError(Exception):
    """A dataset that is missing or malformed; the message says what was expected and where."""


@dataclass
class Split:
    """One split in memory: images uint8 (N, C, H, W), labels int64 (N,), and provenance."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    info: dict = field(default_factory=dict)  # name, split, source, fingerprint

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])

    def head(self, n: int | None) -> "Split":
        """The first n samples (the spec's train_limit / test_limit)."""
        if n is None or n >= len(self):
            return self
        return Split(self.images[:n], self.labels[:n], self.classes, {**self.info, "limit": n})


def describe(name: str, root: Path | None = None) -> tuple[tuple[int, int, int], list[str]]:
    """Input shape (C, H, W) and class names of a dataset, without decoding it."""
    if name in BUILTIN:
        return BUILTIN[name]
    train_dir = _folder(name, root or settings().data_dir, train=True)
    classes = _classes(train_dir)
    first = next(p for p in sorted((train_dir / classes[0]).iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES)
    img = _decode(first.read_bytes())
    return tuple(img.shape), classes


def load_split(name: str, train: bool, root: Path | None = None, download: bool | None = None) -> Split:
    """Load a split, decoding it only when the cache has no copy for these exact source files."""
    root = Path(root or settings().data_dir)
    download = settings().download if download is None else download
    if name == "mnist":
        files, decode, source = _mnist_source(root, train, download)
    elif name == "cifar10":
        files, decode, source = _cifar10_source(root, train, download)
    else:
        files, decode, source = _folder_source(name, root, train)
    split = _cached(f"{name}-{'train' if train else 'test'}", files, decode)
    split.info.update(name=name, split="train" if train else "test", source=source)
    return split


def _cached(key: str, files: list[Path], decode: Callable[[], tuple]) -> Split:
    # Cheap lookup key from names, sizes and mtimes; the recorded fingerprint hashes file contents.
    h = hashlib.sha256(CACHE_FORMAT.encode())
    for f in map(str, files):
        st = os.stat(f)
        h.update(f"{f}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    path = settings().cache_dir / f"{key}-{h.hexdigest()[:16]}.pt"
    limit = settings().resident_splits
    seen = _RESIDENT.get(path) if limit else None
    if seen is not None and seen[0] == _identity(path):
        _RESIDENT.move_to_end(path)  # most recently used last
        split = seen[1]
    else:
        split = _load_or_decode(path, files, decode)
        if limit:
            _RESIDENT[path] = (_identity(path), split)
            _RESIDENT.move_to_end(path)
    while len(_RESIDENT) > limit:  # the least recently used go first
        _RESIDENT.popitem(last=False)
    return Split(split.images, split.labels, split.classes, dict(split.info))  # callers may add to info


def _identity(path: Path) -> tuple[int, int, int] | None:
    """The cache file's inode, size and mtime: a rewritten or damaged cache file is loaded again."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def _load_or_decode(path: Path, files: list[Path], decode: Callable[[], tuple]) -> Split:
    """The split from its cache file, else decoded from the source files and written to the cache."""
    if path.exists():
        try:
            blob = torch.load(path, weights_only=True, mmap=True)  # pages read on use, shared by ranks
            return Split(blob["images"], blob["labels"], blob["classes"], {"fingerprint": blob["fingerprint"]})
        except Exception:  # noqa: BLE001 - a cache file cut short by a crash, whatever torch.load raises: rebuild it
            path.unlink(missing_ok=True)
    images, labels, classes = decode()
    blob = {"images": images, "labels": labels, "classes": classes, "fingerprint": _fingerprint(files)}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    torch.save(blob, tmp)
    os.replace(tmp, path)  # atomic: concurrent workers never read a half-written cache
    return Split(images, labels, classes, {"fingerprint": blob["fingerprint"]})


def _fingerprint(files: list[Path]) -> str:
    """sha256 over the files' contents, relative names included, so copies of the data agree."""
    h = hashlib.sha256()
    base = os.path.commonpath([os.path.dirname(f) for f in map(str, files)]) if files else ""
    for f in files:
        h.update(os.path.relpath(f, base).encode() + b"\0")
        h.update(_read(f))
    return "sha256:" + h.hexdigest()


def _mnist_source(root: Path, train: bool, download: bool):
    raw = root / "MNIST" / "raw"
    files = [raw / n for n in MNIST_FILES[train]]
    if not all(f.exists() for f in files):
        if not download:
            raise DataError(
                f"MNIST not found: expected {', '.join(MNIST_FILES[train])} in {raw}. "
                f"Download it with CNNLAB_DOWNLOAD=1 (or --download), or point --data-dir/CNNLAB_DATA_DIR "
                f"at a folder holding MNIST/raw/.")
        _torchvision_download("MNIST", root, train)

    def decode():
        # torchvision takes seconds to import; only a cache miss decodes (cnnlab train with a warm cache skips it)
        from torchvision.datasets.mnist import read_image_file, read_label_file

        images = read_image_file(str(files[0])).unsqueeze(1).contiguous()  # (N, 28, 28) -> (N, 1, 28, 28)
        return images, read_label_file(str(files[1])).long(), BUILTIN["mnist"][1]

    return files, decode, "torchvision MNIST (original IDX files)"


def _cifar10_source(root: Path, train: bool, download: bool):
    from torchvision.datasets import CIFAR10  # lazily: torchvision takes seconds to import, only CIFAR-10 needs it here

    base = root / CIFAR10.base_folder
    files = [base / n for n in CIFAR10_FILES[train]]
    if not all(f.exists() for f in files) and download:
        _torchvision_download("CIFAR10", root, train)
    if not all(f.exists() for f in files):
        hint = ""
        copies = [p.name for p in root.glob("cifar10*") if (p / "train").is_dir()]
        if copies:
            hint = f" An ImageFolder copy is here as dataset {copies[0]!r}: use dataset={copies[0]}."
        raise DataError(
            f"CIFAR-10 not found: expected the original release ({', '.join(CIFAR10_FILES[train])}) in {base}. "
            f"Download it with CNNLAB_DOWNLOAD=1 (or --download).{hint}")

    def decode():
        try:
            ds = CIFAR10(str(root), train=train, download=False)  # verifies each batch file's md5
        except RuntimeError as exc:
            raise DataError(f"CIFAR-10 in {base} failed its md5 check: {exc}") from None
        images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()  # (N,32,32,3) -> (N,3,32,32)
        return images, torch.tensor(ds.targets, dtype=torch.long), list(ds.classes)

    return files, decode, "torchvision CIFAR-10 (original python release, md5-verified)"


def _torchvision_download(kind: str, root: Path, train: bool) -> None:
    from torchvision import datasets  # lazily: torchvision takes seconds to import, only a download needs it

    try:
        getattr(datasets, kind)(str(root), train=train, download=True)
    except Exception as exc:  # noqa: BLE001 - offline, a mirror down, a bad archive: one message
        raise DataError(f"could not download {kind} into {root}: {exc}") from None


def _folder(name: str, root: Path, train: bool) -> Path:
    path = root / name / ("train" if train else "test")
    if not path.is_dir():
        raise DataError(
            f"dataset {name!r} not found: expected an ImageFolder tree {root / name}/{{train,test}}/<class>/*.jpg|png "
            f"(built-in datasets: {', '.join(BUILTIN)}).")
    return path


def _classes(split_dir: Path) -> list[str]:
    classes = sorted(p.name for p in split_dir.iterdir() if p.is_dir())
    if not classes:
        raise DataError(f"{split_dir} has no class folders")
    return classes


def _folder_source(name: str, root: Path, train: bool):
    split_dir = _folder(name, root, train)
    classes = _classes(_folder(name, root, True))
    extra = set(_classes(split_dir)) - set(classes)
    if extra:
        raise DataError(f"{split_dir} has classes absent from train: {sorted(extra)}")
    # Names sorted as strings (sorting 50k Path objects alone took 0.3 s).
    per_class = [sorted(n for n in os.listdir(split_dir / c) if os.path.splitext(n)[1].lower() in IMAGE_SUFFIXES)
                 if (split_dir / c).is_dir() else [] for c in classes]
    # Classes interleaved (1st of each class, 2nd of each, ...) so a spec's "first N samples" is balanced.
    items = [(os.path.join(split_dir, classes[i], n), i)
             for _, i, n in sorted((k, i, n) for i, names in enumerate(per_class) for k, n in enumerate(names))]
    if not items:
        raise DataError(f"{split_dir} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    files = [p for p, _ in items]

    def decode():
        first = _decode(_read(files[0]))
        images = torch.empty((len(files), *first.shape), dtype=torch.uint8)
        for k, f in enumerate(files):
            img = _decode(_read(f), gray=first.shape[0] == 1)
            if img.shape != first.shape:
                raise DataError(f"all images must share one size: {files[0]} is {tuple(first.shape)}, {f} is {tuple(img.shape)}")
            images[k] = img
        return images, torch.tensor([i for _, i in items], dtype=torch.long), classes

    return files, decode, f"ImageFolder {root / name}"


def _read(path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _decode(data: bytes, gray: bool | None = None) -> torch.Tensor:
    """One image file's bytes as uint8 (C, H, W): 1 channel if grayscale, else RGB."""
    from PIL import Image  # lazily: ~0.1 s to import, only a cache miss of an ImageFolder set decodes

    img = Image.open(io.BytesIO(data))
    if gray is None:
        gray = img.mode in ("L", "1", "I;16")
    arr = np.asarray(img.convert("L" if gray else "RGB"))
    return torch.from_numpy(arr.copy()).view(arr.shape[0], arr.shape[1], -1).permute(2, 0, 1).contiguous()


def channel_stats(images: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and std in [0, 1] units, the default normalization of a dataset."""
    x = images.float().div_(255).transpose(0, 1).flatten(1)  # (C, N*H*W)
    return x.mean(1).tolist(), x.std(1).tolist()
