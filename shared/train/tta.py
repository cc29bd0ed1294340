"""Multi-view test-time augmentation (airbench94's levels): the logits of a test image are the weighted mean of
its views' logits. Level 1: the image and its mirror, 1/2 each. Level 2: that pair (1/2 in all) and the mirror
pairs of the image shifted one pixel up-left and one down-right, reflect-padded (1/4 in all each pair)."""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

from shared.train.batches import DevicePipeline


def shifted(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """x (B, C, H, W) moved so that pixel (i, j) shows the input's (i + dy, j + dx), the border reflected."""
    h, w = x.shape[-2:]
    p = F.pad(x, (1, 1, 1, 1), mode="reflect")
    return p[..., 1 + dy:1 + dy + h, 1 + dx:1 + dx + w]


def views(x: torch.Tensor, level: int) -> list[tuple[float, torch.Tensor]]:
    """(weight, view) pairs for normalized inputs x (B, C, H, W); the weights sum to 1."""
    if level == 0:
        return [(1.0, x)]
    pairs = [(1.0, x)] if level == 1 else [(0.5, x), (0.25, shifted(x, -1, -1)), (0.25, shifted(x, 1, 1))]
    return [(weight / 2, v) for weight, view in pairs for v in (view, view.flip(-1))]


@torch.inference_mode()
def evaluate(model, data: DevicePipeline, batch_size: int, level: int, autocast=contextlib.nullcontext
             ) -> tuple[float, float, torch.Tensor]:
    """Mean loss and accuracy of the views' weighted logits, and every sample's predicted class (on the CPU)."""
    model.eval()
    loss_sum, preds = torch.zeros((), device=data.device, dtype=torch.float64), []
    for lo in range(0, len(data), batch_size):
        x, y = data.batch(torch.arange(lo, min(lo + batch_size, len(data)), device=data.device))
        with autocast():
            logits = sum(weight * model(v).float() for weight, v in views(x, level))
        loss_sum += F.cross_entropy(logits, y, reduction="sum").double()
        preds.append(logits.argmax(1))
    pred = torch.cat(preds)
    return loss_sum.item() / len(data), (pred == data.labels).sum().item() / len(data), pred.cpu()
