"""Images as PNG bytes and data: URIs, the form the pages' figures are stored in (no image library needed)."""

from __future__ import annotations

import base64
import struct
import zlib

import torch
from torchvision.utils import make_grid


def encode_png(image: torch.Tensor) -> bytes:
    """A uint8 (C, H, W) image, C = 1 or 3, as PNG bytes (torchvision.io's encoder is deprecated)."""
    c, h, w = image.shape
    pixels = image.permute(1, 2, 0).reshape(h, w * c).cpu()
    rows = torch.cat([torch.zeros(h, 1, dtype=torch.uint8), pixels], 1)  # filter byte 0 before each row

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", w, h, 8, 0 if c == 1 else 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows.numpy().tobytes(), 9)) + chunk(b"IEND", b""))


def png_uri(image: torch.Tensor) -> str:
    """A uint8 (C, H, W) image as a data: URI."""
    return "data:image/png;base64," + base64.b64encode(encode_png(image)).decode()


def grid_uri(images: torch.Tensor, cols: int, pad: int = 2, pad_value: int = 255) -> str:
    """uint8 (N, C, H, W) images tiled `cols` per row; grayscale stays one channel (3x smaller PNG)."""
    grid = make_grid(images, nrow=cols, padding=pad, pad_value=pad_value)
    return png_uri(grid[:1] if images.shape[1] == 1 else grid)


def to_uint8(x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Floats mapped from [lo, hi] (broadcast per map) onto 0-255."""
    return ((x - lo) / (hi - lo).clamp_min(1e-8) * 255).clamp(0, 255).round().to(torch.uint8)
