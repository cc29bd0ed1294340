"""Every conv layer drawn for the pages (shared.train.layerviews): colour scale, layer list, test image choice."""

from __future__ import annotations

import base64
import io

import pytest
import torch
from PIL import Image

from shared.train.layerviews import conv_layers, diverging, filter_view, layer_views, pick_images
from shared.train.nets import build_model


def png(uri: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))


def test_diverging_maps_sign_and_size_to_blue_white_red():
    x = torch.tensor([[[-2.0, -1.0, 0.0, 1.0, 2.0]]])
    rgb = diverging(x, 1.0)[0, :, 0].T.tolist()
    assert rgb[2] == [255, 255, 255]  # zero is white
    assert rgb[0] == rgb[1] == [33, 102, 172] and rgb[3] == rgb[4] == [178, 24, 43]  # clipped at the scale
    half = diverging(torch.tensor([[[0.5]]]), 1.0)[0, :, 0, 0].tolist()
    assert half == [round(255 + 0.5 * (178 - 255)), round(255 + 0.5 * (24 - 255)), round(255 + 0.5 * (43 - 255))]


@pytest.mark.parametrize("name, shape, count", [("cnn", (1, 28, 28), 2), ("lenet", (3, 32, 32), 2),
                                                ("vgg", (3, 32, 32), 8)])
def test_every_conv_layer_is_listed_in_order(name, shape, count):
    layers = conv_layers(build_model(name, shape, 10))
    assert len(layers) == count and all(name.startswith("features.") for name, _ in layers)


def test_residual_shortcut_projections_are_left_out():
    model = build_model("lenet", (3, 32, 32), 10, residual=True, blocks=3)
    assert all(conv.kernel_size != (1, 1) for _, conv in conv_layers(model))


def test_pick_images_takes_the_first_of_each_class():
    labels = torch.tensor([3, 3, 1, 0, 1, 2, 0])
    assert pick_images(labels, 3) == [3, 2, 5]
    assert pick_images(torch.tensor([1, 1, 1]), 2) == [0, 1]  # fewer classes than asked: the next images fill


def test_filters_of_a_deep_layer_show_their_strongest_input_channel_on_one_scale():
    conv = torch.nn.Conv2d(4, 2, 3)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 2] = 0.5
        conv.weight[1, 1, 1, 1] = -2.0
    view = filter_view(conv)
    assert view["scale"] == 2.0 and not view["rgb"] and view["strongest_input"]
    img = png(view["png"]).convert("RGB")
    assert img.getpixel((1 + 3 + 1 + 1, 1 + 1)) == (33, 102, 172)  # filter 2's centre: the scale's -2.0
    assert img.getpixel((1, 1))[0] > img.getpixel((1, 1))[2]  # filter 1: +0.5 is reddish


def test_layer_views_draw_each_layer_for_each_test_image():
    model = build_model("cnn", (1, 28, 28), 10, n_feature=6)
    x = torch.randn(3, 1, 28, 28)
    shown = torch.randint(0, 255, (3, 1, 28, 28), dtype=torch.uint8)
    out = layer_views(model, x, shown, ["a", "b", "c"], [7, 8, 9])
    assert [t["index"] for t in out["test_images"]] == [7, 8, 9]
    assert [v["map_shape"] for v in out["layers"]] == [[6, 24, 24], [6, 8, 8]]
    first = out["layers"][0]
    assert len(first["maps"]) == 3 and first["cols"] == 6
    assert png(first["maps"][0]["png"]).size == (6 * 25 + 1, 26)  # six 24x24 maps in a row, 1-pixel borders
    assert first["maps"][0]["scale"] != first["maps"][1]["scale"]  # each image on its own scale
