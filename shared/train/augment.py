"""Whole-batch augmentation on the device: crops by index gather (zero or reflect padding, any shift), and the
alternating flip of airbench94 (each image mirrored every other epoch, from a random first epoch)."""

from __future__ import annotations

import torch


def alternating_flips(n: int, seed: int, epoch: int) -> torch.Tensor:
    """(N,) bool by sample index: image i is flipped in `epoch` iff its own coin (drawn once from `seed`) XOR
    `epoch` is even, so it is flipped in every other epoch and half the images start flipped."""
    coins = torch.rand(n, generator=torch.Generator().manual_seed(seed % 2**63)) < 0.5
    return coins ^ (epoch % 2 == 0)


def source_index(shift: torch.Tensor, size: int, pad: int, reflect: bool) -> torch.Tensor:
    """Where each output pixel reads from: shift (B, size) holds offset + position in [0, size + 2 pad) of the
    padded image; returns input indices, -1 where zero padding is read."""
    i = shift - pad
    if reflect:  # ... -2 -1 | 0 1 ... n-1 | n n+1 ... read n-2, ..., 1, 0 ... | ... | n-2, n-3
        i = i.abs()
        return torch.where(i > size - 1, 2 * (size - 1) - i, i)
    return torch.where((i < 0) | (i > size - 1), -1, i)


def crop_flip(x: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor, pad: int, reflect: bool) -> torch.Tensor:
    """x (B, C, H, W) shifted by offsets (B, 2) in [0, 2 pad] after `pad` pixels of padding, mirrored where
    `flips` (B,); one gather for the whole batch, any dtype (uint8 here)."""
    b, c, h, w = x.shape
    cols_in = torch.arange(w, device=x.device)
    cols_in = torch.where(flips[:, None], w - 1 - cols_in, cols_in)  # (B, W), reversed when flipped
    rows = source_index(offsets[:, 0:1] + torch.arange(h, device=x.device), h, pad, reflect)  # (B, H)
    cols = source_index(offsets[:, 1:2] + cols_in, w, pad, reflect)  # (B, W)
    bi = torch.arange(b, device=x.device)[:, None, None, None]
    ci = torch.arange(c, device=x.device)[None, :, None, None]
    out = x[bi, ci, rows.clamp_min(0)[:, None, :, None], cols.clamp_min(0)[:, None, None, :]]
    if not reflect:
        inside = (rows >= 0)[:, None, :, None] & (cols >= 0)[:, None, None, :]
        out = out * inside.to(out.dtype)
    return out
