"""Which datasets a data directory holds, without torch or decoding: what a worker reports in its heartbeat.

The layouts are the ones `shared/train/data.py` reads (it imports its file names from here)."""

from __future__ import annotations

from pathlib import Path

MNIST_FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
CIFAR10_FOLDER = "cifar-10-batches-py"  # torchvision's CIFAR10.base_folder
CIFAR10_FILES = {True: [f"data_batch_{i}" for i in range(1, 6)], False: ["test_batch"]}
DOWNLOADABLE = ("mnist", "cifar10")  # the built-in sets CNNLAB_DOWNLOAD fetches when missing


def _builtin_files(name: str, root: Path) -> list[Path]:
    if name == "mnist":
        return [root / "MNIST" / "raw" / f for split in MNIST_FILES.values() for f in split]
    return [root / CIFAR10_FOLDER / f for split in CIFAR10_FILES.values() for f in split]


def local_datasets(root: Path, download: bool = False) -> list[str]:
    """The dataset names a trainer reading `root` can load: built-ins whose files are there (or any built-in when
    it may download them), and every ImageFolder tree (`<name>/train/`)."""
    names = [n for n in DOWNLOADABLE if download or all(f.is_file() for f in _builtin_files(n, root))]
    try:
        folders = [p.name for p in root.iterdir() if p.name not in DOWNLOADABLE and (p / "train").is_dir()]
    except OSError:  # no data directory at all: only what it may download
        folders = []
    return names + sorted(folders)


def looked_for(name: str) -> str:
    """Where in a data directory `name` is looked for, relative to it (never a machine's absolute path)."""
    if name == "mnist":
        return "MNIST/raw/ (the IDX files)"
    if name == "cifar10":
        return f"{CIFAR10_FOLDER}/ (the original python release)"
    return f"{name}/{{train,test}}/<class>/ (an ImageFolder tree)"
