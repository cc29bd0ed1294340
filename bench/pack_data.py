"""Pack a dataset folder's files into one compressed .npz (and back), to carry it to a machine without the data.

    python bench/pack_data.py pack ../shared/data/cifar10-jpeg .gpu/cifar10-jpeg.npz
    python bench/pack_data.py unpack .gpu/cifar10-jpeg.npz /tmp/data   # -> /tmp/data/cifar10-jpeg/...

The files come back byte for byte, so the dataset fingerprint recorded with results is the same.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def pack(src: Path, dst: Path) -> None:
    files = sorted(p for p in src.rglob("*") if p.is_file())
    blobs = [p.read_bytes() for p in files]
    dst.parent.mkdir(parents=True, exist_ok=True)
    paths = "\n".join(str(p.relative_to(src)) for p in files).encode()
    np.savez_compressed(dst, name=np.array(src.name), paths=np.frombuffer(paths, dtype=np.uint8),
             sizes=np.array([len(b) for b in blobs], dtype=np.int64),
             data=np.frombuffer(b"".join(blobs), dtype=np.uint8))
    print(f"packed {len(files)} files, {sum(map(len, blobs)) / 1e6:.1f} MB -> {dst}")


def unpack(src: Path, root: Path) -> None:
    z = np.load(src)
    base = root / str(z["name"])
    data = z["data"].tobytes()
    offset = 0
    paths = z["paths"].tobytes().decode().split("\n")
    for rel, size in zip(paths, z["sizes"], strict=False):
        path = base / str(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data[offset:offset + size])
        offset += int(size)
    print(f"unpacked {len(paths)} files into {base}")


if __name__ == "__main__":
    {"pack": pack, "unpack": unpack}[sys.argv[1]](Path(sys.argv[2]), Path(sys.argv[3]))
