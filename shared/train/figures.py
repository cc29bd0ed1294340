"""Page artifacts drawn once when a job ends: sample grids, misclassified strip, filters and feature maps.

Everything is a small PNG data URI or a short list, stored as the result details' `artifacts`
(shared.lab.results.ResultDetails), so the results pages never load a model or a dataset. The worker draws them
from the run it just trained (`of_run`); `compute` draws them from a checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from shared.lab.models import model_facts
from shared.lab.results import Misclassified
from shared.lab.specs import Spec
from shared.train import checkpoint
from shared.train.batches import DevicePipeline, spec_permutation
from shared.train.data import Split
from shared.train.engine import Run, load_data
from shared.train.layerviews import layer_views, pick_images
from shared.train.nets import Residual, build_model
from shared.train.pngs import grid_uri, png_uri, to_uint8

GRID_ROWS, GRID_COLS = 8, 5  # the lab's 8x5 figure of training samples
MAX_MAPS = 16  # feature maps kept per stage: enough to see what a layer does, small enough to store
MAX_FILTERS = 64


def permute(images: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """The lab's perm_pixel on uint8 images: the same shuffle of pixel positions in every channel."""
    n, c, h, w = images.shape
    return images.flatten(2)[:, :, perm].view(n, c, h, w)


def samples(images: torch.Tensor, labels: torch.Tensor, classes: list[str], perm: torch.Tensor | None) -> dict:
    """The lab's 8x5 grid of training images; for permuted jobs 20 of them before and after the shuffle."""
    n = GRID_ROWS * GRID_COLS
    # A fixed random draw, like the lab's shuffled batch: ImageFolder splits are sorted by class.
    pick = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))[:n]
    images, labels = images[pick], labels[pick]
    out = {"rows": GRID_ROWS, "cols": GRID_COLS, "png": grid_uri(images[:n], GRID_COLS),
           "labels": [classes[i] for i in labels[:n].tolist()]}
    if perm is not None:
        half = images[: n // 2]
        out["permuted"] = {"rows": GRID_ROWS // 2, "cols": GRID_COLS, "normal": grid_uri(half, GRID_COLS),
                           "permuted": grid_uri(permute(half, perm), GRID_COLS),
                           "labels": out["labels"][: n // 2]}
    return out


def misclassified(images: torch.Tensor, wrong: list[Misclassified], classes: list[str]) -> dict | None:
    """A strip of wrongly classified test images (as a person sees them, unpermuted), true and predicted."""
    if not wrong:
        return None
    idx = torch.tensor([w.index for w in wrong])
    return {"count": len(wrong), "png": grid_uri(images[idx], len(wrong)),
            "items": [{"index": w.index, "label": classes[w.label], "predicted": classes[w.predicted]}
                      for w in wrong]}


# The trunk's layer kinds the pages show: a residual block's output (its convs + shortcut) stands for the conv.
STAGE_KINDS = {nn.Conv2d: "conv", Residual: "conv", nn.ReLU: "relu", nn.GELU: "relu", nn.Sigmoid: "relu",
               nn.Tanh: "relu", nn.MaxPool2d: "pool", nn.AvgPool2d: "pool"}


def stage_kind(layer: nn.Module) -> str | None:
    """The stage a trunk layer shows (a subclass counts: fastnet's whitening layer is a conv), or None."""
    return next((kind for cls, kind in STAGE_KINDS.items() if isinstance(layer, cls)), None)


def trunk(model: nn.Module) -> list[nn.Module]:
    """The trunk's layers in order, nested Sequentials opened (fastnet's groups); a residual block stays whole."""
    def leaves(seq: nn.Module):
        for layer in seq:
            yield from leaves(layer) if isinstance(layer, nn.Sequential) else (layer,)
    return list(leaves(model.features))


def first_conv(model: nn.Module, name: str) -> nn.Conv2d:
    """The catalog's first conv, or the first one inside the trunk (a residual block's first conv)."""
    module = model.get_submodule(model_facts(name).first_conv)
    return module if isinstance(module, nn.Conv2d) else next(m for m in module.modules() if isinstance(m, nn.Conv2d))


def filters(conv: nn.Conv2d) -> dict:
    """The learned first-layer kernels, each scaled to its own range (RGB kernels shown in colour)."""
    w = conv.weight.detach().float()[:MAX_FILTERS]
    if w.shape[1] not in (1, 3):
        w = w.mean(1, keepdim=True)  # no colour to show for other channel counts
    lo, hi = w.amin((1, 2, 3), keepdim=True), w.amax((1, 2, 3), keepdim=True)
    cols = min(len(w), 8)
    return {"count": conv.out_channels, "shape": list(conv.weight.shape),
            "cols": cols, "png": grid_uri(to_uint8(w, lo, hi), cols, pad=1)}


@torch.inference_mode()
def stages(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """First-block activations of one input (1, C, H, W): after the first conv, its activation (the key stays
    "relu" for every activation), and the first pooling where it pools that conv's channels (fastnet pools only
    after its next conv: no pooling stage to show)."""
    out: dict[str, torch.Tensor] = {}
    for layer in trunk(model):  # conv [, BatchNorm], activation, pool: the trunk's first block
        x = layer(x)
        kind = stage_kind(layer)
        if kind is not None and kind not in out:
            out[kind] = x.clone()  # VGG's ReLU works in place: keep what this stage showed
        if kind == "pool":
            break
    if "conv" not in out or "relu" not in out:
        raise ValueError("the convolutional trunk has no conv and activation to show")
    if "pool" in out and out["pool"].shape[1] != out["conv"].shape[1]:
        del out["pool"]
    return out


def feature_maps(model: nn.Module, x: torch.Tensor, shown: torch.Tensor, label: str) -> dict:
    """Maps of one test image; each channel uses its conv range at all three stages, so ReLU's clipping shows."""
    full = stages(model.eval(), x)
    acts = {k: v[0, :MAX_MAPS].float() for k, v in full.items()}
    kinds = [type(m) for m in trunk(model)]
    activation = next(type(m) for m in trunk(model) if stage_kind(m) == "relu")
    # ReLU's output shown on its conv's range shows the clipping; a sigmoid's or tanh's (0..1, -1..1) needs its own.
    ranged = acts["conv"] if activation is nn.ReLU else acts["relu"]
    cols = min(len(acts["conv"]), 8)
    out = {"input": png_uri(shown), "label": label, "channels": len(acts["conv"]),
           "channels_total": full["conv"].shape[1], "cols": cols,
           "batchnorm": any(isinstance(m, nn.BatchNorm2d) for m in model.modules()),
           "activation": activation.__name__, "residual": Residual in kinds,
           "pooling": None if "pool" not in full else "average" if nn.AvgPool2d in kinds else "max"}
    for k in full:
        src = acts["conv"] if k == "conv" else ranged
        lo, hi = src.amin((1, 2), keepdim=True), src.amax((1, 2), keepdim=True)
        out[k] = {"shape": list(acts[k].shape), "png": grid_uri(to_uint8(acts[k], lo, hi).unsqueeze(1), cols, pad=1)}
    return out


def compute(spec: Spec, checkpoint_path: Path, sha256: str | None, data_root: Path | None = None,
            wrong: list[Misclassified] | None = None) -> dict:
    """All artifacts of a job, from a checkpoint of it and its (limited) data splits, loaded now."""
    state = checkpoint.load(checkpoint_path, sha256)
    train, test = load_data(spec, data_root)
    return draw(spec, state["model"], train, test, state["data"], wrong)


def of_run(run: Run, wrong: list[Misclassified] | None = None) -> dict:
    """All artifacts of a run `fit` just finished, from the weights and the data it holds: nothing is loaded again."""
    train, test = (Split(d.images.cpu(), d.labels.cpu(), run.info.data.classes) for d in (run.train_data, run.test_data))
    return draw(run.spec, run.model.state_dict(), train, test, run.info.data.model_dump(), wrong)


def draw(spec: Spec, weights: dict, train: Split, test: Split, data: dict,
         wrong: list[Misclassified] | None = None) -> dict:
    """All artifacts of trained `weights` (a state_dict) on uint8 splits normalized by `data`'s mean and std."""
    _, h, w = train.shape
    perm = spec_permutation(spec, h, w)
    out = {"classes": train.classes, "samples": samples(train.images, train.labels, train.classes, perm),
           "misclassified": misclassified(test.images, wrong or [], train.classes)}
    if model_facts(spec.model).convolutional:
        # A fresh CPU model in the default layout: the same images whichever device, memory format (channels_last)
        # or SyncBatchNorm trained the weights.
        model = build_model(spec.model, train.shape, len(train.classes), **spec.model_args)
        model.load_state_dict(weights)
        x, y = DevicePipeline(test.head(1), torch.device("cpu"), data["mean"], data["std"], perm).batch(
            torch.tensor([0]))
        shown = test.images[0] if perm is None else permute(test.images[:1], perm)[0]  # what the model saw
        out["filters"] = filters(first_conv(model, spec.model))
        out["feature_maps"] = feature_maps(model, x, shown, train.classes[int(y[0])])
        out |= all_layers(model, test, data, perm)
    return out


def all_layers(model: nn.Module, test, data: dict, perm: torch.Tensor | None) -> dict:
    """Every conv layer's filters and maps of a few test images, one per class (shared.train.layerviews)."""
    idx = torch.tensor(pick_images(test.labels))
    x, y = DevicePipeline(test, torch.device("cpu"), data["mean"], data["std"], perm).batch(idx)
    shown = test.images[idx] if perm is None else permute(test.images[idx], perm)
    return layer_views(model, x, shown, [test.classes[i] for i in y.tolist()], idx.tolist())
