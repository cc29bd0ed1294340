"""Filters and feature maps of the conv net variants (the pages draw them from `features`)."""

from __future__ import annotations

import pytest
import torch

from shared.lab.specs import resolve
from shared.train import checkpoint, figures, packs
from shared.train.engine import Reporter
from shared.train.nets import build_model

CIFAR, MNIST = (3, 32, 32), (1, 28, 28)


@pytest.mark.parametrize("name, shape, args, activation, pooling, maps", [
    ("lenet", CIFAR, {}, "ReLU", "max", [6, 28, 28]),
    ("lenet", CIFAR, {"activation": "sigmoid", "pool": "avg"}, "Sigmoid", "average", [6, 28, 28]),
    ("lenet", CIFAR, {"activation": "tanh"}, "Tanh", "max", [6, 28, 28]),
    ("lenet", CIFAR, {"conv": "3x3x2"}, "ReLU", "max", [6, 30, 30]),  # the first 3x3 conv's maps
    ("lenet", CIFAR, {"residual": True, "blocks": 2}, "ReLU", "max", [6, 28, 28]),  # the block's sum
    ("cnn", MNIST, {"head": "conv1x1", "dropout": 0.2}, "ReLU", "max", [6, 24, 24]),
])
def test_feature_maps_and_filters_of_every_variant(name, shape, args, activation, pooling, maps):
    torch.manual_seed(0)
    model = build_model(name, shape, 10, **args)
    shown = torch.zeros(shape, dtype=torch.uint8)
    out = figures.feature_maps(model, torch.randn(1, *shape), shown, "x")
    assert (out["activation"], out["pooling"], out["conv"]["shape"]) == (activation, pooling, maps)
    assert out["residual"] == bool(args.get("residual"))
    assert out["pool"]["shape"][1] == (14 if shape == CIFAR else 12)
    for key in ("conv", "relu", "pool"):
        assert out[key]["png"].startswith("data:image/png;base64,")
    conv = figures.first_conv(model, name)
    assert isinstance(conv, torch.nn.Conv2d) and conv.in_channels == shape[0]
    assert figures.filters(conv)["count"] == 6


def test_fastnet_shows_its_whitening_block_without_a_pooling_stage():
    """fastnet's first block is the whitening conv and a GELU (the groups open inside Sequentials); it pools only
    after the next conv, on other channels, so the page shows two stages, not an error."""
    torch.manual_seed(0)
    model = build_model("fastnet", CIFAR, 10, widths=[8, 16, 16])
    out = figures.feature_maps(model, torch.randn(1, *CIFAR), torch.zeros(CIFAR, dtype=torch.uint8), "x")
    assert (out["activation"], out["pooling"], out["conv"]["shape"]) == ("GELU", None, [16, 31, 31])
    assert out["channels_total"] == 24 and "pool" not in out and out["relu"]["png"].startswith("data:image/png;base64,")
    conv = figures.first_conv(model, "fastnet")
    assert conv.kernel_size == (2, 2) and figures.filters(conv)["count"] == 24


def test_sigmoid_maps_use_their_own_range():
    """A sigmoid's output (0..1) drawn on its conv's range would be a flat grey: it gets its own range."""
    torch.manual_seed(0)
    model = build_model("lenet", CIFAR, 10, activation="sigmoid")
    acts = figures.stages(model.eval(), torch.randn(1, *CIFAR))
    assert acts["relu"].min() > 0 and acts["relu"].max() < 1
    out = figures.feature_maps(model, torch.randn(1, *CIFAR), torch.zeros(CIFAR, dtype=torch.uint8), "x")
    assert out["relu"]["png"] != out["conv"]["png"]


class KeepRun(Reporter):
    """Keeps the trained run the engine hands over when it is done, as the worker's reporter does."""

    run = None

    def on_done(self, run):
        self.run = run


@pytest.mark.parametrize("strategy", ["vmap", "sequential"])
def test_a_packs_members_draw_the_images_of_their_own_checkpoints(strategy, data_dir, tmp_path):
    """Each seed of a pack hands its own trained run over; drawn from it (no reload), its images are those of its
    checkpoint, byte for byte, on either way of training the pack."""
    spec = resolve("mnist-cnn", {"train_limit": 300, "test_limit": 100, "device": "cpu", "permute_pixels": True})
    kept = {seed: KeepRun() for seed in (0, 1)}
    out = packs.fit_seeds(spec, [0, 1], data_root=data_dir, out_dirs={s: tmp_path / str(s) for s in kept},
                          reporters=kept, strategy=strategy)
    drawn = {s: figures.of_run(kept[s].run, out[s].misclassified) for s in kept}
    for seed in kept:
        loaded = figures.compute(spec.model_copy(update={"seed": seed}), checkpoint.path_for(tmp_path / str(seed), 1),
                                 None, data_dir, out[seed].misclassified)
        assert drawn[seed] == loaded
    assert drawn[0]["filters"] != drawn[1]["filters"]  # each seed's own weights
