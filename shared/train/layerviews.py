"""Every convolution layer of a trained net, drawn for the pages: its filters and its maps of a few test images,
on one diverging colour scale per picture (blue negative, white zero, red positive) so signs and sizes read."""

from __future__ import annotations

import torch
from torch import nn

from shared.train.pngs import grid_uri, png_uri

TEST_IMAGES = 6  # test images to choose from on the page: the first of each of the first classes
MAX_FILTERS, MAX_MAPS = 32, 16  # per layer: enough to see what it does, small enough to store
NEGATIVE, POSITIVE = torch.tensor([33.0, 102, 172]), torch.tensor([178.0, 24, 43])  # RdBu's ends


def diverging(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Floats (N, H, W) on [-scale, scale] as uint8 RGB (N, 3, H, W): blue below zero, white at zero, red above."""
    t = (x / max(scale, 1e-12)).clamp(-1, 1).unsqueeze(1)
    white = torch.full((1, 3, 1, 1), 255.0)
    pos, neg = t.clamp(min=0), (-t).clamp(min=0)
    rgb = white + pos * (POSITIVE.view(1, 3, 1, 1) - white) + neg * (NEGATIVE.view(1, 3, 1, 1) - white)
    return rgb.round().to(torch.uint8)


def conv_layers(model: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    """The trunk's convolutions in order (1x1 shortcut projections left out: they only match shapes)."""
    return [(f"features.{name}", m) for name, m in model.features.named_modules()
            if isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1)]


def pick_images(labels: torch.Tensor, n: int = TEST_IMAGES) -> list[int]:
    """Indices of the first test image of each class, classes in order, up to `n` (fewer classes: repeats fill)."""
    firsts: dict[int, int] = {}
    for i, y in enumerate(labels.tolist()):
        firsts.setdefault(y, i)
    picked = [firsts[c] for c in sorted(firsts)][:n]
    extra = [i for i in range(len(labels)) if i not in picked][: n - len(picked)]
    return picked + extra


def filter_view(conv: nn.Conv2d) -> dict:
    """The layer's kernels: RGB as colour (each kernel on its own range), else on one shared diverging scale
    (a deeper kernel shows its strongest input channel)."""
    w = conv.weight.detach().float()[:MAX_FILTERS]
    out, _, kh, kw = w.shape
    cols = min(out, 8)
    if w.shape[1] == 3:
        lo, hi = w.amin((1, 2, 3), keepdim=True), w.amax((1, 2, 3), keepdim=True)
        img = ((w - lo) / (hi - lo).clamp_min(1e-8) * 255).round().to(torch.uint8)
        return {"png": grid_uri(img, cols, pad=1), "cols": cols, "cell": [kh, kw], "rgb": True, "shown": out}
    strongest = w.pow(2).sum((2, 3)).argmax(1)  # (out,): the input channel each kernel weighs most
    planes = w[torch.arange(out), strongest]
    scale = planes.abs().max().item()
    return {"png": grid_uri(diverging(planes, scale), cols, pad=1), "cols": cols, "cell": [kh, kw], "rgb": False,
            "scale": scale, "shown": out, "strongest_input": w.shape[1] > 1}


@torch.inference_mode()
def layer_outputs(model: nn.Module, x: torch.Tensor, layers: list[tuple[str, nn.Conv2d]]) -> list[torch.Tensor]:
    """Each listed conv's output for the batch `x` (forward hooks on one pass)."""
    seen: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: seen.append(out.detach().float().clone()))
             for _, m in layers]
    try:
        model.eval()(x)
    finally:
        for h in hooks:
            h.remove()
    return seen


def layer_views(model: nn.Module, x: torch.Tensor, shown: torch.Tensor, labels: list[str], indices: list[int]) -> dict:
    """Filters of every conv layer and its maps of each test image in `x` (as the model saw them: `shown`)."""
    layers = conv_layers(model)
    outputs = layer_outputs(model, x, layers)
    views = []
    for i, ((name, conv), out) in enumerate(zip(layers, outputs, strict=True)):
        maps = out[:, :MAX_MAPS]
        _, c, h, w = maps.shape
        cols = min(c, 8)
        per_image = []
        for k in range(len(maps)):
            scale = maps[k].abs().max().item()
            per_image.append({"png": grid_uri(diverging(maps[k], scale), cols, pad=1), "scale": scale})
        views.append({"name": name, "index": i + 1, "in_channels": conv.in_channels, "out_channels": conv.out_channels,
                      "kernel": list(conv.kernel_size), "filters": filter_view(conv), "maps": per_image,
                      "map_shape": [c, h, w], "cols": cols})
    images = [{"png": png_uri(shown[k]), "label": labels[k], "index": indices[k]} for k in range(len(indices))]
    return {"layers": views, "test_images": images}
